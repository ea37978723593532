"""A grown index (one index over several releases, `designclip index --append`): a generation's files, then card.json.

    indexes/@NAME/TAG/KIND/card.json            the done marker: model, releases held, recall; names the generation
    indexes/@NAME/TAG/KIND/g000002/index.faiss  a plain `faiss.write_index` file
    indexes/@NAME/TAG/KIND/g000002/keys.parquet id -> (release, key) and the row of each vector
    indexes/@NAME/TAG/KIND/g000002/card.md      the card for people

An append writes the grown index into a new generation folder beside the current one (each file under a temporary
name, then renamed) and switches card.json to it last, so a crash at any point leaves the previous index and key
table whole and readable; older generations are deleted after the switch (or by the next append after a crash).
"""

from __future__ import annotations

import re
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.indexes import INDEX_FILE, IndexCorrupt, LoadedIndex, _load_faiss, _put_index
from designclip.storage.markers import DoneMarker, remove_tree
from designclip.storage.vocabulary import human_bytes

KEYS_FILE, CARD_JSON, CARD_MD = "keys.parquet", "card.json", "card.md"
GENERATION = re.compile(r"^g(\d{6})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")

KEYS = pa.schema(
    [
        ("id", pa.int64()),  # the FAISS id search returns: the row, so ids of an appended release follow the last
        ("release", pa.string()),  # the release the vector came from
        ("key", pa.string()),  # the sample key within that release
        ("row", pa.int64()),  # position of the vector in the index (insertion order)
    ]
)


class GrownIndexMissing(RuntimeError):
    """No grown index of this name and model; the message says which command starts one."""


def check_name(name: str) -> str:
    """A grown index name is a folder name: letters, digits and `._+-` (like a release version)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(f"grown index name {name!r}: use letters, digits and . _ + - (e.g. all, designs-2021-)")
    return name


def qualified_key(release: str, key: str) -> str:
    """The key search returns for a view of a grown index: `RELEASE/KEY` (neither part holds a slash)."""
    return f"{release}/{key}"


def split_key(qualified: str) -> tuple[str, str]:
    """(release, key) of a `RELEASE/KEY` key; ValueError for anything else."""
    release, sep, key = str(qualified).partition("/")
    if not sep or not release or not key:
        raise ValueError(f"{qualified!r} is not a RELEASE/KEY key of a grown index")
    return release, key


def card_marker(folder: DataFolder, name: str, tag: str, kind: str) -> DoneMarker:
    return DoneMarker(folder, f"{layout.grown_index_dir(check_name(name), tag, kind)}/{CARD_JSON}")


def read_grown_card(folder: DataFolder, name: str, tag: str, kind: str) -> dict[str, Any] | None:
    """The grown index's card (releases held, model, recall), or None when it was never written."""
    return card_marker(folder, name, tag, kind).read()


def grown_models(folder: DataFolder, name: str) -> list[str]:
    """Model tags with a finished grown index called `name` (of any kind)."""
    root = layout.grown_index_root(check_name(name))
    return [tag for tag in folder.ls_dirs(root)
            if any(folder.exists(f"{root}/{tag}/{kind}/{CARD_JSON}") for kind in folder.ls_dirs(f"{root}/{tag}"))]


def generation_file(name: str, tag: str, kind: str, generation: str, file: str) -> str:
    return f"{layout.grown_index_dir(name, tag, kind)}/{generation}/{file}"


def _generations(folder: DataFolder, name: str, tag: str, kind: str) -> list[str]:
    return [d for d in folder.ls_dirs(layout.grown_index_dir(name, tag, kind)) if GENERATION.match(d)]


def _next_generation(folder: DataFolder, name: str, tag: str, kind: str) -> str:
    numbers = [int(GENERATION.match(g).group(1)) for g in _generations(folder, name, tag, kind)]  # type: ignore
    return f"g{max(numbers, default=0) + 1:06d}"


def remove_other_generations(folder: DataFolder, name: str, tag: str, kind: str, keep: str | None) -> list[str]:
    """Delete generation folders other than `keep` (older ones, or what a crashed append left); returns them."""
    gone = [g for g in _generations(folder, name, tag, kind) if g != keep]
    for generation in gone:
        remove_tree(folder, f"{layout.grown_index_dir(name, tag, kind)}/{generation}")
    return gone


def read_grown_keys(folder: DataFolder, name: str, tag: str, kind: str, card: dict[str, Any]) -> pa.Table:
    """The key table (id, release, key, row) of the card's generation."""
    with folder.open(generation_file(name, tag, kind, card["generation"], KEYS_FILE)) as f:
        return pq.read_table(f, schema=KEYS)


def _stored_ids(index: faiss.Index) -> np.ndarray:
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def read_grown_index(folder: DataFolder, name: str, tag: str, kind: str) -> LoadedIndex:
    """The grown index of the card's generation with id -> `RELEASE/KEY` and its card; checked to agree."""
    card = read_grown_card(folder, name, tag, kind)
    if card is None:
        raise GrownIndexMissing(f"no grown {kind} index {name!r} by {tag} under {folder.url}: start one with "
                                f"`designclip index --append --into {name} --release RELEASE --model {tag}`")
    index = _load_faiss(folder, generation_file(name, tag, kind, card["generation"], INDEX_FILE))
    table = read_grown_keys(folder, name, tag, kind, card)
    ids = table.column("id").to_numpy()
    if len(ids) != index.ntotal or not np.array_equal(_stored_ids(index), ids):
        raise IndexCorrupt(f"{folder.path(layout.grown_index_dir(name, tag, kind))}/{card['generation']}: "
                           f"{KEYS_FILE} ({len(ids)} rows) does not match {INDEX_FILE} ({index.ntotal} vectors): "
                           f"delete {folder.path(layout.grown_index_dir(name, tag, kind))} and append its releases "
                           f"({', '.join(r['release'] for r in card['releases'])}) again")
    keys = [qualified_key(r, k) for r, k in zip(table.column("release").to_pylist(), table.column("key").to_pylist(),
                                                  strict=True)]
    return LoadedIndex(index, dict(zip(ids.tolist(), keys, strict=True)), card)


def grown_card_markdown(card: dict[str, Any]) -> str:
    """The card for people: releases held, what was built, how good and fast it measured after the last append."""
    tuned = ", ".join(f"`{k} = {v}`" for k, v in (card.get("tuned_settings") or {}).items()) or "none (exact)"
    lines = [
        f"# Grown index `{card['index_name']}` ({card['vectors']} vectors), model {card['model_tag']}", "",
        f"- factory: `{card['factory']}` ({card['kind']}, wrapped in IndexIDMap2; inner product on L2-normalised "
        f"{card['dim']}-d vectors); planned for the first release: {card['reason']}",
        f"- vectors: {card['n']} from {len(card['releases'])} releases; ids are rows, each release's follow the last",
        f"- memory: estimated {human_bytes(card['est_bytes'])}, index file {human_bytes(card['actual_bytes'])}, "
        f"budget {card['memory_budget_gb']} GiB",
        f"- search setting: {tuned} ({card['tune_reason']})",
        f"- recall@10 vs exact over every release held: **{card['recall_at_10']:.3f}** on {card['queries']} "
        f"queries ({card['query_source']}); target {card['target_recall']}",
        f"- latency: {card['latency_ms']:.3f} ms/query vs exact {card['exact_latency_ms']:.3f} ms/query",
        f"- a fresh build now: {card['rebuild_advice'] or 'would choose the same kind of index'}", "",
        "| release | vectors | ids | left out | added in s | appended at |", "|---|---|---|---|---|---|",
    ]
    for r in card["releases"]:
        lines.append(f"| {r['release']} | {r['n']} | {r['first_id']}..{r['first_id'] + r['n'] - 1} | "
                     f"{r['left_out']} | {r['add_seconds']:.1f} | {r['appended_at']} |")
    lines += ["", "Load: `faiss.read_index(\"index.faiss\")`; `keys.parquet` maps ids to (release, key).", ""]
    return "\n".join(lines)


def write_grown_index(folder: DataFolder, name: str, tag: str, kind: str, index: faiss.Index, keys: pa.Table,
                      card: dict[str, Any]) -> dict[str, Any]:
    """A new generation (index.faiss, keys.parquet, card.md), then card.json naming it; the old one is deleted."""
    if keys.schema != KEYS:
        keys = keys.cast(KEYS)
    if keys.num_rows != index.ntotal or not np.array_equal(_stored_ids(index), keys.column("id").to_numpy()):
        raise ValueError(f"{keys.num_rows} keys for {index.ntotal} indexed vectors: the key table must list the "
                         "index's ids in the order the vectors were added")
    marker = card_marker(folder, name, tag, kind)
    current = (marker.read() or {}).get("generation")
    remove_other_generations(folder, name, tag, kind, keep=current)  # what a crashed append left
    generation = _next_generation(folder, name, tag, kind)
    size = _put_index(folder, index, generation_file(name, tag, kind, generation, INDEX_FILE))
    with folder.atomic_open(generation_file(name, tag, kind, generation, KEYS_FILE), "wb") as f:
        pq.write_table(keys, f, compression="zstd")
    card = {**card, "generation": generation, "actual_bytes": size}
    with folder.atomic_open(generation_file(name, tag, kind, generation, CARD_MD), "w") as f:
        f.write(grown_card_markdown(card))
    marker.write(card)  # the switch: from here on readers open the new generation
    remove_other_generations(folder, name, tag, kind, keep=generation)
    return card
