"""FAISS index files of a release and model: index.faiss, ids.parquet (id -> key), card.md, card.json written last.

A folder without card.json is unfinished (a rewrite deletes the card first), so readers never pair a new
index.faiss with old ids. index.faiss is a plain `faiss.write_index` file: `faiss.read_index(path)` loads it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker
from designclip.storage.vocabulary import human_bytes

INDEX_FILE, IDS_FILE, CARD_JSON, CARD_MD = "index.faiss", "ids.parquet", "card.json", "card.md"

IDS = pa.schema(
    [
        ("id", pa.int64()),  # the FAISS id search returns: blake2b of the key (pipeline.index.faiss_index.key_ids)
        ("key", pa.string()),  # the sample key in the release
        ("row", pa.int64()),  # position of the vector in the index (insertion order)
    ]
)


class IndexMissing(RuntimeError):
    """No finished index (card.json) for this release, model and name; the message says which command builds it."""


class IndexCorrupt(RuntimeError):
    """The index files disagree with each other; rebuilding the index fixes it."""


@dataclass
class LoadedIndex:
    """A loaded index with the map from its ids back to sample keys and its card."""

    index: faiss.Index
    keys_by_id: dict[int, str]
    card: dict[str, Any]


def index_file(release: str, tag: str, name: str, file: str) -> str:
    return f"{layout.index_dir(release, tag, name)}/{file}"


def card_marker(folder: DataFolder, release: str, tag: str, name: str) -> DoneMarker:
    """card.json, the index's done marker: written last, deleted first when the index is rewritten."""
    return DoneMarker(folder, index_file(release, tag, name, CARD_JSON))


def read_card(folder: DataFolder, release: str, tag: str, name: str) -> dict[str, Any] | None:
    """The finished index's card, or None when there is no finished index."""
    return card_marker(folder, release, tag, name).read()


def _stored_ids(index: faiss.Index) -> np.ndarray:
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    return np.arange(index.ntotal, dtype=np.int64)


def _put_index(folder: DataFolder, index: faiss.Index, rel: str) -> int:
    """faiss.write_index to a local temporary file, then into place (rename locally, upload + rename remotely)."""
    if folder.is_local:
        parent = folder.makedirs(rel.rpartition("/")[0])
        tmp = os.path.join(parent, f".{INDEX_FILE}.{uuid.uuid4().hex[:8]}.tmp")  # same filesystem: atomic rename
    else:
        fd, tmp = tempfile.mkstemp(suffix=".faiss")
        os.close(fd)
    try:
        faiss.write_index(index, tmp)
        size = os.path.getsize(tmp)
        folder.put_file(tmp, rel)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return size


def card_markdown(card: dict[str, Any]) -> str:
    """The card for people: what was built, why, and how good and fast it measured."""
    tuned = (f"`{card['tuned_param']} = {card['tuned_value']}`" if card.get("tuned_param") else "none (exact)")
    extra = {k: v for k, v in (card.get("tuned_settings") or {}).items() if k != card.get("tuned_param")}
    if extra:
        tuned += " with " + ", ".join(f"`{k} = {v}`" for k, v in extra.items())
    lines = [
        f"# Index `{card['name']}`: release {card['release']}, model {card['model_tag']}", "",
        f"- factory: `{card['factory']}` ({card['kind']}, wrapped in IndexIDMap2; inner product on L2-normalised "
        f"{card['dim']}-d {card['vectors']} vectors)",
        f"- vectors: {card['n']} from splits {', '.join(card['splits'])}; left out: {card['left_out']} "
        f"({card['left_out_reason']})",
        f"- why: {card['reason']}",
        f"- memory: estimated {human_bytes(card['est_bytes'])}, index file {human_bytes(card['actual_bytes'])}, "
        f"budget {card['memory_budget_gb']} GiB",
        f"- built in {card['build_seconds']:.1f}s{' (k-means on the GPU)' if card.get('gpu') else ' on the CPU'}, "
        f"faiss {card['faiss_version']}",
        f"- search setting: {tuned} ({card['tune_reason']})",
        f"- recall@10 vs exact: **{card['recall_at_10']:.3f}** on {card['queries']} held-out queries "
        f"({card['query_source']}); target {card['target_recall']}",
        f"- latency: {card['latency_ms']:.3f} ms/query vs exact {card['exact_latency_ms']:.3f} ms/query "
        f"(one batch of {card['queries']}; {card['qps_ratio']:.1f}x the exact QPS)", "",
    ]
    names = [k for k in (card.get("sweep") or [{}])[0] if k not in ("recall_at_10", "latency_ms")]
    if names:
        lines += ["| " + " | ".join([*names, "recall@10", "ms/query"]) + " |",
                  "|" + "---|" * (len(names) + 2)]
        for row in card["sweep"]:
            lines.append("| " + " | ".join([*(str(row.get(n, "")) for n in names), f"{row['recall_at_10']:.3f}",
                                            f"{row['latency_ms']:.3f}"]) + " |")
        lines.append("")
    lines += ["Load: `faiss.read_index(\"index.faiss\")`; `ids.parquet` maps the returned ids to sample keys.", ""]
    return "\n".join(lines)


def write_index(folder: DataFolder, release: str, tag: str, name: str, index: faiss.Index, ids: np.ndarray,
                keys: list[str], card: dict[str, Any]) -> None:
    """index.faiss + ids.parquet (id, key, row) + card.md, then card.json last (the done marker)."""
    ids = np.asarray(ids, dtype=np.int64)
    if not (len(ids) == len(keys) == index.ntotal):
        raise ValueError(f"{len(ids)} ids, {len(keys)} keys and {index.ntotal} indexed vectors must match")
    if not np.array_equal(_stored_ids(index), ids):
        raise ValueError("the ids do not match the ids stored in the index (same order as the vectors added)")
    marker = card_marker(folder, release, tag, name)
    marker.remove()  # unfinished from here until the new card
    size = _put_index(folder, index, index_file(release, tag, name, INDEX_FILE))
    table = pa.table({"id": ids, "key": list(keys), "row": np.arange(len(ids), dtype=np.int64)}, schema=IDS)
    with folder.atomic_open(index_file(release, tag, name, IDS_FILE), "wb") as f:
        pq.write_table(table, f, compression="zstd")
    card = {**card, "actual_bytes": size}
    with folder.atomic_open(index_file(release, tag, name, CARD_MD), "w") as f:
        f.write(card_markdown(card))
    marker.write(card)


def _load_faiss(folder: DataFolder, rel: str) -> faiss.Index:
    if folder.is_local:
        return faiss.read_index(folder.path(rel))
    fd, tmp = tempfile.mkstemp(suffix=".faiss")
    os.close(fd)
    try:
        folder.get_file(rel, tmp)
        return faiss.read_index(tmp)
    finally:
        os.remove(tmp)


def read_index(folder: DataFolder, release: str, tag: str, name: str) -> LoadedIndex:
    """The finished index with its id -> key map and card; IndexMissing when it is not built (or unfinished)."""
    card = read_card(folder, release, tag, name)
    if card is None:
        raise IndexMissing(f"no finished {name} index of release {release} by {tag} under {folder.url} "
                           f"({layout.index_dir(release, tag, name)}/{CARD_JSON} is missing): run "
                           f"`designclip index --release {release} --model {tag}`")
    index = _load_faiss(folder, index_file(release, tag, name, INDEX_FILE))
    with folder.open(index_file(release, tag, name, IDS_FILE)) as f:
        table = pq.read_table(f, schema=IDS)
    ids = table.column("id").to_numpy()
    if len(ids) != index.ntotal or not np.array_equal(_stored_ids(index), ids):
        raise IndexCorrupt(f"{folder.path(layout.index_dir(release, tag, name))}: ids.parquet ({len(ids)} rows) does "
                           f"not match index.faiss ({index.ntotal} vectors): rebuild it with `designclip index "
                           f"--release {release} --model {tag}`")
    keys_by_id = dict(zip(ids.tolist(), table.column("key").to_pylist(), strict=True))
    return LoadedIndex(index, keys_by_id, card)
