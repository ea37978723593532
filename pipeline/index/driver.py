"""The INDEX stage driver, Prefect-free: a release's embeddings by one model -> a planned, tuned FAISS index + card.

Unit: one kind of vectors (image or text) of a model tag on a release. Done: the index card names the same
embeddings fingerprint and settings (an unchanged index is kept).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faiss
from designclip.pipeline.common.stage import Logger, Progress, Scope, UnitResult, no_progress
from designclip.pipeline.index.faiss_index import (
    IndexBuildError,
    build_index,
    evaluate_index,
    key_ids,
    tune_index,
    uses_gpu,
)
from designclip.pipeline.index.inputs import KINDS, MAX_QUERIES, IndexInputs, gather_vectors
from designclip.pipeline.index.plan import DEFAULT_FLAT_MAX, IndexPlan, plan_index
from designclip.storage import layout
from designclip.storage.embeddings import SPLITS, embeddings_fingerprint, read_encoder_record
from designclip.storage.folder import DataFolder
from designclip.storage.indexes import read_card, write_index

MIN_SPLIT_QUERIES = 200  # with fewer held-out queries, tune and report on the same ones


@dataclass(frozen=True)
class IndexOptions:
    """Which splits go in, the memory budget (decides Flat / HNSW / IVF-PQ), the recall and per-query targets."""

    splits: tuple[str, ...] = SPLITS
    memory_budget_gb: float = 8.0
    target_recall: float = 0.95
    latency_ms: float = 10.0
    flat_max: int = DEFAULT_FLAT_MAX
    use_gpu: bool | None = None
    max_queries: int = MAX_QUERIES
    seed: int = 0

    def settings(self, kind: str) -> dict[str, Any]:
        """What the card records: an index built with other settings is rebuilt."""
        return {"kind": kind, "splits": list(self.splits), "memory_budget_gb": self.memory_budget_gb,
                "target_recall": self.target_recall, "latency_ms": self.latency_ms, "flat_max": self.flat_max}


@dataclass(frozen=True)
class IndexUnit:
    """The `kind` (image / text) vectors of a model tag on a release."""

    release: str
    model_tag: str
    kind: str = "image"

    def __str__(self) -> str:
        return f"{self.model_tag}/{self.kind}"


def resolve_model_tag(data_root: str, release: str, model: str, pretrained: str | None = None) -> str:
    """`model` as given when it already names embeddings of the release, else the tag its spec gets."""
    if not pretrained and read_encoder_record(DataFolder(data_root), release, model) is not None:
        return model
    from designclip.pipeline.embed.encoder import EncoderSpec, model_tag

    return model_tag(EncoderSpec(model, pretrained))


def _fingerprint(folder: DataFolder, unit: IndexUnit, options: IndexOptions) -> str:
    fingerprint = embeddings_fingerprint(folder, unit.release, unit.model_tag, tuple(options.splits))
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class IndexDriver:
    """INDEX: plan, build, tune and write one index of a release's embeddings; an unchanged one is kept."""

    log: Logger = field(default_factory=lambda: logging.getLogger("designclip.index"))
    name: str = "index"

    def units(self, folder: DataFolder, scope: Scope, options: IndexOptions) -> list[IndexUnit]:
        """One unit per kind of each model's vectors (an image-only model has no text index)."""
        out = []
        for model in scope.models or (scope.run,):
            tag = resolve_model_tag(folder.url, scope.release, model)
            has_text = (read_encoder_record(folder, scope.release, tag) or {}).get("has_text") is not False
            out += [IndexUnit(scope.release, tag, k) for k in KINDS if k == "image" or has_text]
        return out

    def _done(self, folder: DataFolder, unit: IndexUnit, options: IndexOptions, fingerprint: str) -> dict | None:
        old = read_card(folder, unit.release, unit.model_tag, unit.kind)
        if old is None or old.get("embeddings_fingerprint") != fingerprint:
            return None
        return old if old.get("settings") == options.settings(unit.kind) else None

    def is_done(self, folder: DataFolder, unit: IndexUnit, options: IndexOptions) -> bool:
        return self._done(folder, unit, options, _fingerprint(folder, unit, options)) is not None

    def outputs(self, folder: DataFolder, scope: Scope, options: IndexOptions) -> str:
        model = (scope.models or (scope.run,))[0]
        return folder.path(layout.index_model_dir(scope.release, resolve_model_tag(folder.url, scope.release, model)))

    def run(self, folder: DataFolder, unit: IndexUnit, options: IndexOptions,
            progress: Progress = no_progress) -> UnitResult:
        """Build the index (progress: 0/1, then 1/1 once written), or keep an unchanged one."""
        release, tag, kind, log = unit.release, unit.model_tag, unit.kind, self.log
        where = folder.path(layout.index_dir(release, tag, kind))
        fingerprint = _fingerprint(folder, unit, options)
        old = self._done(folder, unit, options, fingerprint)
        if old is not None:
            log.info("%s index of %s by %s is up to date (%s)", kind, release, tag, where)
            return UnitResult(self.name, str(unit), True, old, where)
        progress(0, 1)
        splits = tuple(options.splits)
        data = gather_vectors(folder, release, tag, kind, splits, options.max_queries, options.seed)
        if data.left_out:
            log.warning("%s index: left out %d of %d rows (%s)", kind, data.left_out, data.rows_total,
                        data.left_out_reason)
        if not data.keys:
            raise IndexBuildError(f"release {release} splits {','.join(splits)} by {tag}: no usable {kind} "
                                  f"vectors ({data.left_out} left out: {data.left_out_reason})")
        if not len(data.queries):
            raise IndexBuildError(f"no usable query vectors ({data.query_source}) to measure recall with")
        budget = int(options.memory_budget_gb * 2**30)
        plan = plan_index(len(data.keys), data.vectors.shape[1], budget, options.flat_max)
        log.info("%s index: %s over %d vectors: %s", kind, plan.factory, plan.n, plan.reason)
        ids = key_ids(data.keys)
        started = time.perf_counter()
        index = build_index(data.vectors, ids, plan, use_gpu=options.use_gpu,
                            progress=lambda m: log.info("%s index: %s", kind, m), seed=options.seed)
        card = self._tune_and_card(unit, options, data, plan, index, time.perf_counter() - started, fingerprint)
        write_index(folder, release, tag, kind, index, ids, data.keys, card)
        progress(1, 1)
        return UnitResult(self.name, str(unit), False, read_card(folder, release, tag, kind) or card, where)

    def _tune_and_card(self, unit: IndexUnit, options: IndexOptions, data: IndexInputs, plan: IndexPlan,
                       index: faiss.Index, build_s: float, fingerprint: str) -> dict[str, Any]:
        """Tune the search parameter on half the queries, measure on the other half; the card says it all."""
        half = len(data.queries) // 2
        tune_q, eval_q = ((data.queries[:half], data.queries[half:]) if len(data.queries) >= MIN_SPLIT_QUERIES
                          else (data.queries, data.queries))
        tuned = tune_index(index, plan, data.vectors, tune_q, 10, options.target_recall, options.latency_ms)
        measured = evaluate_index(index, data.vectors, eval_q, 10)
        self.log.info("%s index: %s=%s, recall@10 %.3f, %.3f ms/query (exact %.3f)", unit.kind, tuned.param,
                      tuned.value, measured["recall_at_10"], measured["latency_ms"], measured["exact_latency_ms"])
        budget = int(options.memory_budget_gb * 2**30)
        return {
            "release": unit.release, "model_tag": unit.model_tag, "name": unit.kind, "vectors": unit.kind,
            "splits": list(options.splits), "factory": plan.factory, "kind": plan.kind, "n": plan.n, "dim": plan.dim,
            "reason": plan.reason, "params": plan.params, "memory_budget_gb": options.memory_budget_gb,
            "memory_budget_bytes": budget, "est_bytes": plan.est_bytes, "build_seconds": round(build_s, 3),
            "gpu": uses_gpu(plan, options.use_gpu), "faiss_version": faiss.__version__,
            "metric": "inner product (cosine on L2-normalised vectors)",
            "tuned_param": tuned.param, "tuned_value": tuned.value, "tuned_settings": tuned.settings,
            "tune_reason": tuned.reason, "met_target": bool(measured["recall_at_10"] >= options.target_recall),
            "sweep": tuned.sweep, "tune_queries": len(tune_q),
            "recall_at_10": round(float(measured["recall_at_10"]), 4), "latency_ms": round(measured["latency_ms"], 4),
            "exact_latency_ms": round(measured["exact_latency_ms"], 4),
            "qps": round(1000.0 / max(measured["latency_ms"], 1e-9), 1),
            "exact_qps": round(1000.0 / max(measured["exact_latency_ms"], 1e-9), 1),
            "qps_ratio": round(measured["exact_latency_ms"] / max(measured["latency_ms"], 1e-9), 2),
            "queries": int(measured["queries"]), "query_source": data.query_source,
            "held_out_separate": len(data.queries) >= MIN_SPLIT_QUERIES,
            "target_recall": options.target_recall, "latency_target_ms": options.latency_ms,
            "rows_total": data.rows_total, "left_out": data.left_out, "left_out_reason": data.left_out_reason,
            "embeddings_fingerprint": fingerprint, "settings": options.settings(unit.kind),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


INDEX = IndexDriver()


def card_of(result: UnitResult) -> dict[str, Any]:
    """The index card as the flows and CLI read it (plus `skipped` and the index folder as `path`)."""
    return {**result.stats, "skipped": result.skipped, "path": result.where}


def build_release_index(data_root: str, release: str, model_tag: str, kind: str = "image",
                        splits: tuple[str, ...] = SPLITS, memory_budget_gb: float = 8.0,
                        target_recall: float = 0.95, latency_ms: float = 10.0, logger: Logger | None = None,
                        flat_max: int = DEFAULT_FLAT_MAX, use_gpu: bool | None = None,
                        max_queries: int = MAX_QUERIES, seed: int = 0) -> dict[str, Any]:
    """Plan, build, tune and write the `kind` index of a release's embeddings in this process; unchanged: kept."""
    driver = IndexDriver(logger) if logger is not None else INDEX
    options = IndexOptions(tuple(splits), memory_budget_gb, target_recall, latency_ms, flat_max, use_gpu,
                           max_queries, seed)
    return card_of(driver.run(DataFolder(data_root), IndexUnit(release, model_tag, kind), options))
