"""What an index is built from: a release's usable vectors of one kind, their keys and held-out queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from designclip.pipeline.index.faiss_index import IndexBuildError
from designclip.storage.embeddings import (
    EmbeddingsMissing,
    embed_command,
    iter_split_vectors,
    read_encoder_record,
    release_shards,
)
from designclip.storage.folder import DataFolder

KINDS = ("image", "text")
OTHER = {"image": "text", "text": "image"}
MAX_QUERIES = 1000


@dataclass
class IndexInputs:
    """The vectors to index (ok rows only), their keys, the held-out queries and what was left out."""

    vectors: np.ndarray
    keys: list[str]
    queries: np.ndarray
    query_source: str
    rows_total: int
    left_out: int
    left_out_reason: str


def _ok(meta_column: Any, rows: int) -> np.ndarray:
    return np.ones(rows, bool) if meta_column is None else np.asarray(meta_column.to_pylist(), dtype=bool)


def gather_vectors(folder: DataFolder, release: str, tag: str, kind: str, splits: tuple[str, ...],
                   max_queries: int = MAX_QUERIES, seed: int = 0) -> IndexInputs:
    """The kind's usable vectors of the splits (shard by shard, one copy in memory) and up to max_queries
    held-out queries of the other modality (what search sends: text for the image index, drawings for text)."""
    if kind not in KINDS:
        raise ValueError(f"index kind {kind!r}: use one of {KINDS}")
    record = read_encoder_record(folder, release, tag)
    if record is None:
        raise EmbeddingsMissing(f"release {release} has no embeddings by {tag!r}: run "
                                f"`{embed_command(folder, release, tag)}`")
    has_text = bool(record.get("has_text", True))
    if kind == "text" and not has_text:
        raise IndexBuildError(f"{tag} is an image-only model (no text tower): it has no text vectors to index")
    dim = int(record["dim"])
    total = sum(s.samples for s in release_shards(folder, release, splits))
    query_kind = OTHER[kind] if has_text else kind
    rng = np.random.default_rng(seed)
    wanted = rng.choice(total, size=min(total, 2 * max_queries), replace=False) if total else np.zeros(0, np.int64)
    out = np.empty((total, dim), np.float32)
    keys: list[str] = []
    queries: list[np.ndarray] = []
    offset = 0
    for split in splits:
        for _shard, part in iter_split_vectors(folder, release, tag, split):
            meta = part.meta
            names = set(meta.column_names)
            ok = {"image": _ok(meta.column("image_ok"), meta.num_rows),
                  "text": _ok(meta.column("text_ok") if "text_ok" in names else None, meta.num_rows)}
            vectors = {"image": part.image, "text": part.text}
            rows = np.flatnonzero(ok[kind])
            out[len(keys):len(keys) + len(rows)] = vectors[kind][rows]
            shard_keys = meta.column("key").to_pylist()
            keys.extend(shard_keys[i] for i in rows)
            picked = np.isin(np.arange(offset, offset + meta.num_rows), wanted) & ok[query_kind]
            queries.extend(vectors[query_kind][picked])
            offset += meta.num_rows
    order = rng.permutation(len(queries))[:max_queries]
    q = np.stack([queries[i] for i in order]) if len(order) else np.zeros((0, dim), np.float32)
    source = {"image": "caption text vectors of the same views (text search)",
              "text": "drawing image vectors of the same views (image to caption search)"}[kind]
    if not has_text:
        source = "image vectors of indexed views (image-only model; each query is also in the database)"
    reason = ("image_ok False: the PNG did not decode, its vector is zeros" if kind == "image"
              else "text_ok False: no caption, the vector is the empty string's")
    return IndexInputs(out[:len(keys)], keys, q, source, offset, offset - len(keys), reason)
