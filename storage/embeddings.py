"""Embedding files of a release: encoder.json per model tag, per release shard .npy + row-aligned Parquet + stats.

The stats JSON of a shard is written last (after both .npy files and the Parquet, each written atomically): a
shard without it is unfinished and is embedded again; a shard whose stats name an older build of the release is
stale and is embedded again too.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker
from designclip.storage.release import release_digest
from designclip.storage.vocabulary import SPLITS
from designclip.storage.webdataset import tar_samples

DTYPES = ("float32", "float16")
KINDS = ("image", "text")

EMBED_META = pa.schema(
    [
        ("row", pa.int32()),  # position in the split's vectors (all shards of the split in shard order)
        ("key", pa.string()),
        ("patent_id", pa.string()),
        ("title", pa.string()),
        ("fig", pa.string()),
        ("view", pa.string()),
        ("split", pa.string()),
        ("cls", pa.int16()),
        ("uspc_class", pa.string()),
        ("locarno_class", pa.string()),
        ("caption", pa.string()),
        ("shard", pa.string()),  # the release shard, "test/00000.tar"
        ("shard_index", pa.int32()),  # position of the sample in that shard
        ("image_ok", pa.bool_()),  # False: the PNG did not decode and the image vector is all zeros
        ("error", pa.string()),  # why not (image_unreadable: ..., caption_missing, json_unreadable: ...)
        ("text_ok", pa.bool_()),  # False: no caption, the text vector is the empty string's
    ]
)


class EmbeddingsMissing(RuntimeError):
    """Vectors that are not (all) there or not usable; the message names the shards and the command to run."""


class EmbeddingsConflict(RuntimeError):
    """A model tag already used for other weights: vectors of two models never mix under one tag."""


class ReleaseNotReady(RuntimeError):
    """The release (or a split of it) to embed is not finished."""


@dataclass(frozen=True)
class ReleaseShard:
    """One shard of a release split, the unit the embed stage works on."""

    split: str
    number: int
    samples: int
    first_row: int  # row of its first sample in the split's vectors

    @property
    def name(self) -> str:
        return layout.release_shard_name(self.split, self.number)


@dataclass
class SplitVectors:
    """Row-aligned vectors and metadata of one split (text None for image-only models)."""

    image: np.ndarray
    text: np.ndarray | None
    meta: pa.Table

    @property
    def image_ok(self) -> np.ndarray:
        """Rows whose image vector is real (the others are zeros of unreadable PNGs)."""
        return np.asarray(self.meta.column("image_ok").to_pylist(), dtype=bool)

    @property
    def keys(self) -> list[str]:
        return self.meta.column("key").to_pylist()

    def __len__(self) -> int:
        return self.meta.num_rows


# ------------------------------------------------------------------------------------------------- release side


def release_fingerprint(folder: DataFolder, release: str) -> str:
    """sha256 of the release marker's input fingerprint: a rebuilt release with other inputs gets another one."""
    rel = layout.release_marker(release)
    if not folder.exists(rel):
        raise ReleaseNotReady(f"release {release!r} is not finished under {folder.url}: run "
                              f"`designclip release --version {release}` first")
    return release_digest(folder.read_json(rel))


def release_shards(folder: DataFolder, release: str, splits: Iterable[str] = SPLITS) -> list[ReleaseShard]:
    """The shards of the chosen splits in split and shard order, with sample counts from sizes.json."""
    out: list[ReleaseShard] = []
    for split in splits:
        rel = layout.release_file(release, layout.release_sizes_name(split))
        if not folder.exists(rel):
            raise ReleaseNotReady(f"release {release!r} has no split {split!r} ({rel} is missing): choose splits "
                                  f"from train,val,test or rebuild with `designclip release --version {release}`")
        sizes: dict[str, int] = folder.read_json(rel)
        row = 0
        for name in sorted(sizes):
            n = int(sizes[name])
            out.append(ReleaseShard(split, int(name.split(".", 1)[0]), n, row))
            row += n
    return out


def read_release_shard(folder: DataFolder, release: str, shard: ReleaseShard) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) of every sample of a release shard, in shard order (streamed)."""
    yield from tar_samples(folder.url_of(layout.release_file(release, shard.name)))


# ------------------------------------------------------------------------------------------------- encoder record


def read_encoder_record(folder: DataFolder, release: str, tag: str) -> dict[str, Any] | None:
    rel = layout.embed_record(release, tag)
    return folder.read_json(rel) if folder.exists(rel) else None


def write_encoder_record(folder: DataFolder, release: str, tag: str, record: dict[str, Any]) -> None:
    """Write encoder.json once; the same weights again (e.g. run name vs its folder) keep it, others are refused."""
    if not record.get("weights_sha256"):
        raise ValueError("an encoder record needs weights_sha256 (ClipEncoder.record() gives it)")
    old = read_encoder_record(folder, release, tag)
    if old is None:
        folder.write_json(layout.embed_record(release, tag), record)
        return
    if old.get("weights_sha256") != record["weights_sha256"] or old.get("dim") != record.get("dim"):
        raise EmbeddingsConflict(
            f"tag {tag!r} of release {release} already holds vectors of another model "
            f"({_describe(old)}), not of {_describe(record)}: delete the folder "
            f"{folder.path(layout.embed_dir(release, tag))} (its vectors are stale) or give the model another name")


def _describe(record: dict[str, Any]) -> str:
    spec = record.get("spec") or {}
    pre = f" {spec['pretrained']}" if spec.get("pretrained") else ""
    return f"{spec.get('model')}{pre}, {record.get('init')}, weights {str(record.get('weights_sha256'))[:12]}"


def embed_command(folder: DataFolder, release: str, tag: str) -> str:
    """The command that (re)makes these embeddings, from the encoder record when there is one."""
    spec = (read_encoder_record(folder, release, tag) or {}).get("spec") or {"model": tag}
    pre = f" --pretrained {spec['pretrained']}" if spec.get("pretrained") else ""
    return f"designclip embed --release {release} --model {spec['model']}{pre}"


# ------------------------------------------------------------------------------------------------- shard files


def shard_marker(folder: DataFolder, release: str, tag: str, split: str, number: int) -> DoneMarker:
    """The done marker of one release shard's vectors by one model (its stats JSON, written last)."""
    return DoneMarker(folder, layout.embed_stats(release, tag, split, number))


def read_shard_stats(folder: DataFolder, release: str, tag: str, split: str, number: int) -> dict[str, Any] | None:
    return shard_marker(folder, release, tag, split, number).read()


def shard_embeddings_done(folder: DataFolder, release: str, tag: str, split: str, number: int,
                          fingerprint: str | None = None) -> bool:
    """True when the shard's stats marker exists (and, given `fingerprint`, names this build of the release)."""
    stats = read_shard_stats(folder, release, tag, split, number)
    return stats is not None and (fingerprint is None or stats.get("release_fingerprint") == fingerprint)


def _write_npy(folder: DataFolder, rel: str, array: np.ndarray) -> None:
    with folder.atomic_open(rel, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _read_npy(folder: DataFolder, rel: str) -> np.ndarray:
    return np.load(io.BytesIO(folder.read_bytes(rel)), allow_pickle=False)


def _check_vectors(name: str, array: np.ndarray, rows: int) -> None:
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"{name} vectors have shape {array.shape}, the metadata has {rows} rows")


def write_shard_embeddings(folder: DataFolder, release: str, tag: str, split: str, number: int, image: np.ndarray,
                           text: np.ndarray | None, meta: pa.Table, stats: dict[str, Any],
                           dtype: str = "float32") -> None:
    """The shard's .npy files and Parquet (each atomic), then the stats marker; `text` None for image-only models."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: use one of {DTYPES}")
    rows = meta.num_rows
    _check_vectors("image", image, rows)
    if text is not None:
        _check_vectors("text", text, rows)
        if text.shape[1] != image.shape[1]:
            raise ValueError(f"image vectors are {image.shape[1]}-d, text vectors {text.shape[1]}-d")
    table = meta.select(EMBED_META.names).cast(EMBED_META)
    _write_npy(folder, layout.embed_file(release, tag, split, number, "image"), image.astype(dtype))
    text_rel = layout.embed_file(release, tag, split, number, "text")
    if text is not None:
        _write_npy(folder, text_rel, text.astype(dtype))
    else:
        folder.remove(text_rel)
    with folder.atomic_open(layout.embed_meta(release, tag, split, number), "wb") as f:
        pq.write_table(table, f, compression="zstd")
    marker = {**stats, "samples": rows, "dim": int(image.shape[1]), "dtype": dtype, "text": text is not None}
    shard_marker(folder, release, tag, split, number).write(marker)


def remove_temporaries(folder: DataFolder, release: str, tag: str, splits: Iterable[str]) -> int:
    """Delete temporaries a killed writer left (call before any shard of this tag is being written)."""
    return sum(folder.remove_temporaries(f"{layout.embed_dir(release, tag)}/{split}") for split in splits)


def _shard_vectors(folder: DataFolder, release: str, tag: str, shard: ReleaseShard, stats: dict[str, Any],
                   dim: int) -> SplitVectors:
    """One finished shard's vectors (float32) and metadata, checked against each other and its stats."""
    image = _read_npy(folder, layout.embed_file(release, tag, shard.split, shard.number, "image"))
    text = (_read_npy(folder, layout.embed_file(release, tag, shard.split, shard.number, "text"))
            if stats.get("text", True) else None)
    with folder.open(layout.embed_meta(release, tag, shard.split, shard.number)) as f:
        meta = pq.read_table(f, schema=EMBED_META)
    shapes = [a.shape for a in (image, text) if a is not None]
    if any(s != (shard.samples, dim) for s in shapes) or meta.num_rows != shard.samples:
        raise EmbeddingsMissing(
            f"{shard.name} embeddings by {tag} do not match the release (vectors {shapes}, {meta.num_rows} metadata "
            f"rows, release shard {shard.samples} samples, dim {dim}): delete "
            f"{folder.path(layout.embed_stats(release, tag, shard.split, shard.number))} and rerun "
            f"`{embed_command(folder, release, tag)}`")
    return SplitVectors(image.astype(np.float32), text.astype(np.float32) if text is not None else None, meta)


def _finished_shards(folder: DataFolder, release: str, tag: str,
                     split: str) -> tuple[dict[str, Any], list[tuple[ReleaseShard, dict[str, Any]]]]:
    """(encoder record, [(shard, stats)]) when every shard of the split is embedded from this build of the release."""
    record = read_encoder_record(folder, release, tag)
    if record is None:
        raise EmbeddingsMissing(f"release {release} has no embeddings by {tag!r} under {folder.url}: run "
                                f"`designclip embed --release {release} --model MODEL` (MODEL: the run, folder or "
                                f"open_clip name whose tag is {tag})")
    try:
        shards = release_shards(folder, release, [split])
        fingerprint = release_fingerprint(folder, release)
    except ReleaseNotReady as exc:
        raise EmbeddingsMissing(str(exc)) from exc
    stats = [(s, read_shard_stats(folder, release, tag, s.split, s.number)) for s in shards]
    missing = [s.name for s, st in stats if st is None]
    stale = [s.name for s, st in stats if st is not None and st.get("release_fingerprint") != fingerprint]
    if missing or stale:
        parts = [f"{len(missing)} of {len(shards)} shards not embedded ({_names(missing)})"] if missing else []
        if stale:
            parts.append(f"{len(stale)} embedded from an older build of the release ({_names(stale)})")
        raise EmbeddingsMissing(f"release {release} split {split} by {tag}: {'; '.join(parts)}: run "
                                f"`{embed_command(folder, release, tag)}`")
    return record, stats  # type: ignore[return-value]


def iter_split_vectors(folder: DataFolder, release: str, tag: str,
                       split: str) -> Iterator[tuple[ReleaseShard, SplitVectors]]:
    """The split shard by shard (bounded memory for large releases); checked up front like load_split_vectors."""
    record, shards = _finished_shards(folder, release, tag, split)
    for shard, stats in shards:
        yield shard, _shard_vectors(folder, release, tag, shard, stats, int(record["dim"]))


def load_split_vectors(folder: DataFolder, release: str, tag: str, split: str) -> SplitVectors:
    """All vectors of a split in shard order; any shard not (or no longer) embedded raises EmbeddingsMissing."""
    record, shards = _finished_shards(folder, release, tag, split)
    dim = int(record["dim"])
    parts = [_shard_vectors(folder, release, tag, shard, stats, dim) for shard, stats in shards]
    if not parts:
        empty = np.zeros((0, dim), np.float32)
        return SplitVectors(empty, empty.copy() if record.get("has_text", True) else None, EMBED_META.empty_table())
    text = np.concatenate([p.text for p in parts]) if all(p.text is not None for p in parts) else None
    return SplitVectors(np.concatenate([p.image for p in parts]), text, pa.concat_tables([p.meta for p in parts]))


def _names(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def embedded_splits(folder: DataFolder, release: str, tag: str) -> list[str]:
    """The splits of the release whose every shard is embedded by `tag` from this build of the release."""
    if read_encoder_record(folder, release, tag) is None:
        return []
    try:
        fingerprint = release_fingerprint(folder, release)
    except ReleaseNotReady:
        return []
    out = []
    for split in SPLITS:
        if not folder.exists(layout.release_file(release, layout.release_sizes_name(split))):
            continue
        shards = release_shards(folder, release, [split])
        if all(shard_embeddings_done(folder, release, tag, s.split, s.number, fingerprint) for s in shards):
            out.append(split)
    return out


def embeddings_fingerprint(folder: DataFolder, release: str, tag: str, splits: Iterable[str]) -> dict[str, Any]:
    """What the vectors are: encoder.json's hash and, per split, every shard stats marker (name + bytes).

    Re-embedded or new shards change it, so what was built from the vectors (indexes, reports) knows to redo.
    """
    record = layout.embed_record(release, tag)
    out: dict[str, Any] = {"encoder": hashlib.sha256(folder.read_bytes(record)).hexdigest()
                           if folder.exists(record) else None}
    for split in splits:
        digest = hashlib.sha256()
        names = folder.list(f"{layout.embed_dir(release, tag)}/{split}", ".stats.json")
        for rel in names:
            digest.update(rel.rsplit("/", 1)[-1].encode() + b"\0" + folder.read_bytes(rel) + b"\0")
        out[split] = {"shards": len(names), "stats_sha256": digest.hexdigest()}
    return out
