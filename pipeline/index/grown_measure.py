"""Recall of a grown index after an append: the vectors of every release it holds read again (checked unchanged),
the search setting re-tuned over all of them, and whether a fresh build would now choose another index."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import pyarrow as pa
from designclip.pipeline.common.stage import Logger
from designclip.pipeline.index.driver import MIN_SPLIT_QUERIES, IndexOptions
from designclip.pipeline.index.faiss_index import evaluate_index, tune_index
from designclip.pipeline.index.grown_checks import AppendRefused, fingerprint_of
from designclip.pipeline.index.inputs import IndexInputs, gather_vectors
from designclip.pipeline.index.plan import IndexPlan, PlanError, flat_bytes, hnsw_bytes, ivfpq_bytes, plan_index
from designclip.storage.embeddings import EmbeddingsMissing, embed_command
from designclip.storage.folder import DataFolder

REFINE_BYTES = {"flat": 4, "sqfp16": 2, "sq8": 1, None: 0}


def grown_database(folder: DataFolder, card: dict[str, Any], keys: pa.Table, options: IndexOptions,
                   log: Logger) -> list[IndexInputs]:
    """The vectors of each release held, in index order, read from their embeddings (which must be unchanged)."""
    tag, kind, name = card["model_tag"], card["vectors"], card["index_name"]
    releases = keys.column("release").to_pylist()
    table_keys = keys.column("key").to_pylist()
    out = []
    for held in card["releases"]:
        release = held["release"]
        held_options = IndexOptions(tuple(held["splits"]), max_queries=options.max_queries, seed=options.seed)
        try:
            now = fingerprint_of(folder, release, tag, held_options)
            data = gather_vectors(folder, release, tag, kind, tuple(held["splits"]), options.max_queries,
                                  options.seed)
        except EmbeddingsMissing as err:
            raise AppendRefused(f"grown index {name!r} holds release {release}, whose vectors by {tag} are gone, so "
                                f"recall cannot be measured: re-embed it (`{embed_command(folder, release, tag)}`) "
                                "or delete the grown index and append its releases again") from err
        start, stop = held["first_id"], held["first_id"] + held["n"]
        if now != held["embeddings_fingerprint"] or data.keys != table_keys[start:stop] or \
                set(releases[start:stop]) != {release}:
            raise AppendRefused(f"release {release} was re-embedded since it joined grown index {name!r}: the index "
                                "holds its old vectors. Delete the grown index's folder and append its releases "
                                "again, in order")
        log.info("grown %s index %r: read %d vectors of release %s to measure recall", kind, name, len(data.keys),
                 release)
        out.append(data)
    return out


def plan_of_card(card: dict[str, Any], n: int) -> IndexPlan:
    """The grown index's plan (the kind and parameters chosen for its first release) at its size now."""
    kind, params, dim = card["kind"], dict(card.get("params") or {}), int(card["dim"])
    if kind == "flat":
        est = flat_bytes(n, dim)
    elif kind == "hnsw":
        est = hnsw_bytes(n, dim, int(params.get("M", 32)))
    else:
        est = ivfpq_bytes(n, dim, int(params["nlist"]), int(params["pq_m"]), REFINE_BYTES[params.get("refine")])
    return IndexPlan(card["factory"], kind, n, dim, est, card["reason"], params)


def rebuild_advice(plan: IndexPlan, options: IndexOptions) -> str | None:
    """None while a fresh build over all vectors would choose the same kind of index within the budget."""
    budget = int(options.memory_budget_gb * 2**30)
    try:
        fresh = plan_index(plan.n, plan.dim, budget, options.flat_max)
    except PlanError as err:
        return f"no index over {plan.n} vectors fits the budget any more ({err})"
    if fresh.kind == plan.kind and plan.est_bytes <= budget:
        return None
    return (f"a fresh build over {plan.n} vectors would choose {fresh.factory} ({fresh.reason}); rebuild by "
            "deleting the grown index and appending its releases again")


def _queries(parts: list[IndexInputs], options: IndexOptions) -> np.ndarray:
    """Up to max_queries held-out queries drawn from every release's, so each year is asked about."""
    pooled = np.concatenate([p.queries for p in parts]) if parts else np.zeros((0, 1), np.float32)
    order = np.random.default_rng(options.seed).permutation(len(pooled))[:options.max_queries]
    return pooled[np.sort(order)]


def measure_grown(index: faiss.Index, plan: IndexPlan, parts: list[IndexInputs], options: IndexOptions, log: Logger,
                  kind: str) -> dict[str, Any]:
    """Tune the search setting on half the queries over the grown database, measure on the other half."""
    database = np.concatenate([p.vectors for p in parts]) if len(parts) > 1 else parts[0].vectors
    queries = _queries(parts, options)
    if not len(queries):
        raise AppendRefused("no usable query vectors to measure the grown index's recall with")
    half = len(queries) // 2
    split = len(queries) >= MIN_SPLIT_QUERIES
    tune_q, eval_q = (queries[:half], queries[half:]) if split else (queries, queries)
    tuned = tune_index(index, plan, database, tune_q, 10, options.target_recall, options.latency_ms)
    measured = evaluate_index(index, database, eval_q, 10)
    log.info("grown %s index: %s=%s, recall@10 %.3f over %d vectors, %.3f ms/query (exact %.3f)", kind, tuned.param,
             tuned.value, measured["recall_at_10"], len(database), measured["latency_ms"],
             measured["exact_latency_ms"])
    return {
        "tuned_param": tuned.param, "tuned_value": tuned.value, "tuned_settings": tuned.settings,
        "tune_reason": tuned.reason, "sweep": tuned.sweep, "tune_queries": len(tune_q),
        "met_target": bool(measured["recall_at_10"] >= options.target_recall),
        "recall_at_10": round(float(measured["recall_at_10"]), 4), "latency_ms": round(measured["latency_ms"], 4),
        "exact_latency_ms": round(measured["exact_latency_ms"], 4),
        "qps_ratio": round(measured["exact_latency_ms"] / max(measured["latency_ms"], 1e-9), 2),
        "queries": int(measured["queries"]), "held_out_separate": split,
        "query_source": f"{parts[-1].query_source}, drawn from every release held",
        "target_recall": options.target_recall, "latency_target_ms": options.latency_ms,
    }
