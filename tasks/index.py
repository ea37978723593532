"""The index task: a release's embeddings -> a planned, tuned FAISS index with its card (skipped when unchanged)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from designclip.pipeline.index.faiss_index import (
    IndexBuildError,
    build_index,
    evaluate_index,
    key_ids,
    tune_index,
    uses_gpu,
)
from designclip.pipeline.index.plan import DEFAULT_FLAT_MAX, plan_index
from designclip.storage import layout
from designclip.storage.embeddings import (
    EmbeddingsMissing,
    embed_command,
    embeddings_fingerprint,
    iter_split_vectors,
    read_encoder_record,
    release_shards,
)
from designclip.storage.folder import DataFolder
from designclip.storage.indexes import read_card, write_index
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

KINDS = ("image", "text")
OTHER = {"image": "text", "text": "image"}
MAX_QUERIES = 1000
MIN_SPLIT_QUERIES = 200  # with fewer held-out queries, tune and report on the same ones


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


def _settings(kind: str, splits: tuple[str, ...], memory_budget_gb: float, target_recall: float,
              latency_ms: float, flat_max: int) -> dict[str, Any]:
    return {"kind": kind, "splits": list(splits), "memory_budget_gb": memory_budget_gb,
            "target_recall": target_recall, "latency_ms": latency_ms, "flat_max": flat_max}


def build_release_index(data_root: str, release: str, model_tag: str, kind: str = "image",
                        splits: tuple[str, ...] = ("train", "val", "test"), memory_budget_gb: float = 8.0,
                        target_recall: float = 0.95, latency_ms: float = 10.0,
                        logger: logging.Logger | logging.LoggerAdapter | None = None,
                        flat_max: int = DEFAULT_FLAT_MAX, use_gpu: bool | None = None,
                        max_queries: int = MAX_QUERIES, seed: int = 0) -> dict[str, Any]:
    """Plan, build, tune and write the `kind` index of a release's embeddings; an unchanged one is skipped."""
    log = logger or logging.getLogger("designclip.index")
    folder = DataFolder(data_root)
    splits = tuple(splits)
    where = folder.path(layout.index_dir(release, model_tag, kind))
    fingerprint = hashlib.sha256(json.dumps(embeddings_fingerprint(folder, release, model_tag, splits),
                                            sort_keys=True).encode()).hexdigest()
    settings = _settings(kind, splits, memory_budget_gb, target_recall, latency_ms, flat_max)
    old = read_card(folder, release, model_tag, kind)
    if old is not None and old.get("embeddings_fingerprint") == fingerprint and old.get("settings") == settings:
        log.info("%s index of %s by %s is up to date (%s)", kind, release, model_tag, where)
        return {**old, "skipped": True, "path": where}
    data = gather_vectors(folder, release, model_tag, kind, splits, max_queries, seed)
    if data.left_out:
        log.warning("%s index: left out %d of %d rows (%s)", kind, data.left_out, data.rows_total,
                    data.left_out_reason)
    if not data.keys:
        raise IndexBuildError(f"release {release} splits {','.join(splits)} by {model_tag}: no usable {kind} "
                              f"vectors ({data.left_out} left out: {data.left_out_reason})")
    if not len(data.queries):
        raise IndexBuildError(f"no usable query vectors ({data.query_source}) to measure recall with")
    budget = int(memory_budget_gb * 2**30)
    plan = plan_index(len(data.keys), data.vectors.shape[1], budget, flat_max)
    log.info("%s index: %s over %d vectors: %s", kind, plan.factory, plan.n, plan.reason)
    ids = key_ids(data.keys)
    started = time.perf_counter()
    index = build_index(data.vectors, ids, plan, use_gpu=use_gpu, progress=lambda m: log.info("%s index: %s", kind, m),
                        seed=seed)
    build_s = time.perf_counter() - started
    half = len(data.queries) // 2
    tune_q, eval_q = ((data.queries[:half], data.queries[half:]) if len(data.queries) >= MIN_SPLIT_QUERIES
                      else (data.queries, data.queries))
    tuned = tune_index(index, plan, data.vectors, tune_q, 10, target_recall, latency_ms)
    measured = evaluate_index(index, data.vectors, eval_q, 10)
    log.info("%s index: %s=%s, recall@10 %.3f, %.3f ms/query (exact %.3f)", kind, tuned.param, tuned.value,
             measured["recall_at_10"], measured["latency_ms"], measured["exact_latency_ms"])
    card = {
        "release": release, "model_tag": model_tag, "name": kind, "vectors": kind, "splits": list(splits),
        "factory": plan.factory, "kind": plan.kind, "n": plan.n, "dim": plan.dim, "reason": plan.reason,
        "params": plan.params, "memory_budget_gb": memory_budget_gb, "memory_budget_bytes": budget,
        "est_bytes": plan.est_bytes, "build_seconds": round(build_s, 3), "gpu": uses_gpu(plan, use_gpu),
        "faiss_version": faiss.__version__, "metric": "inner product (cosine on L2-normalised vectors)",
        "tuned_param": tuned.param, "tuned_value": tuned.value, "tuned_settings": tuned.settings,
        "tune_reason": tuned.reason, "met_target": bool(measured["recall_at_10"] >= target_recall),
        "sweep": tuned.sweep, "tune_queries": len(tune_q),
        "recall_at_10": round(float(measured["recall_at_10"]), 4), "latency_ms": round(measured["latency_ms"], 4),
        "exact_latency_ms": round(measured["exact_latency_ms"], 4),
        "qps": round(1000.0 / max(measured["latency_ms"], 1e-9), 1),
        "exact_qps": round(1000.0 / max(measured["exact_latency_ms"], 1e-9), 1),
        "qps_ratio": round(measured["exact_latency_ms"] / max(measured["latency_ms"], 1e-9), 2),
        "queries": int(measured["queries"]), "query_source": data.query_source,
        "held_out_separate": len(data.queries) >= MIN_SPLIT_QUERIES,
        "target_recall": target_recall, "latency_target_ms": latency_ms,
        "rows_total": data.rows_total, "left_out": data.left_out, "left_out_reason": data.left_out_reason,
        "embeddings_fingerprint": fingerprint, "settings": settings,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_index(folder, release, model_tag, kind, index, ids, data.keys, card)
    return {**read_card(folder, release, model_tag, kind), "skipped": False, "path": where}


@task(name="index", task_run_name="index-{kind}", cache_policy=NO_CACHE)
def index_task(data_root: str, release: str, model_tag: str, kind: str = "image",
               splits: tuple[str, ...] = ("train", "val", "test"), memory_budget_gb: float = 8.0,
               target_recall: float = 0.95, latency_ms: float = 10.0) -> dict[str, Any]:
    """One index (image or text vectors) of a release as a Prefect task; an unchanged index is skipped."""
    return build_release_index(data_root, release, model_tag, kind, splits, memory_budget_gb, target_recall,
                               latency_ms, logger=get_run_logger())
