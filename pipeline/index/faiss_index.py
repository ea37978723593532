"""Build, tune and search FAISS indexes: inner product on L2-normalised rows, stable ids that map back to keys."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np
from designclip.pipeline.index.plan import IndexPlan

ID_MASK = (1 << 63) - 1  # ids are non-negative int64: FAISS uses -1 for "no result"
ADD_BATCH = 65_536
PROGRESS_EVERY_S = 10.0
NORM_TOLERANCE = 1e-2  # float16 vectors on disk come back within ~1e-3 of unit length
TIE_EPS = 1e-6  # a returned row scoring this close to the k-th exact score counts as a hit (ties)
EF_SEARCH_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
K_FACTOR_LADDER = (4, 8, 16, 32, 64)
DEFAULT_NPROBE, DEFAULT_K_FACTOR = 8, 16


class IndexBuildError(ValueError):
    """Vectors or keys that cannot be indexed as they are; the message says which rows and why."""


def key_ids(keys: Sequence[str]) -> np.ndarray:
    """Stable int64 ids (>= 0) from the sample keys: the first 8 bytes of blake2b, so rebuilds keep every id."""
    out = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not key:
            raise IndexBuildError(f"sample key at row {i} is {key!r}: every indexed row needs a non-empty key")
        out[i] = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") & ID_MASK
    values, first, counts = np.unique(out, return_index=True, return_counts=True)
    if (counts > 1).any():
        clash = values[counts > 1][0]
        rows = np.flatnonzero(out == clash)
        names = sorted({keys[r] for r in rows})
        if len(names) == 1:
            raise IndexBuildError(f"sample key {names[0]!r} appears {len(rows)} times (rows {rows.tolist()}): "
                                  "keys must be unique within an index")
        raise IndexBuildError(f"id collision: keys {names} hash to the same 63-bit id {int(clash)}; rename one")
    return out


def gpu_available() -> bool:
    """True when this FAISS build sees a CUDA GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def uses_gpu(plan: IndexPlan, use_gpu: bool | None = None) -> bool:
    """Whether the build trains on the GPU: only IVF k-means can (HNSW has no GPU build, Flat nothing to train)."""
    wanted = gpu_available() if use_gpu is None else use_gpu
    if wanted and not gpu_available():
        raise IndexBuildError("use_gpu=True but FAISS sees no GPU (faiss.get_num_gpus() == 0)")
    return bool(wanted) and plan.kind == "ivfpq"


def check_vectors(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    """float32 C-contiguous rows of unit length; zero rows (unreadable images) or NaNs are refused, not indexed."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise IndexBuildError(f"vectors have shape {x.shape}, expected (n, {dim if dim is not None else 'dim'})")
    norms = np.linalg.norm(x, axis=1)
    bad = ~np.isfinite(norms) | (np.abs(norms - 1.0) > NORM_TOLERANCE)
    if bad.any():
        rows = np.flatnonzero(bad)
        zero = int((norms[rows] == 0).sum())
        raise IndexBuildError(f"{len(rows)} of {len(x)} rows are not L2-normalised (rows {rows[:10].tolist()}"
                              f"{' ...' if len(rows) > 10 else ''}; {zero} all zero): leave out unreadable images "
                              "(image_ok False) and normalise the rest")
    return x


def _ivf(index: faiss.Index) -> Any:
    return faiss.try_extract_index_ivf(index)


def _training_sample(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    if size >= len(x):
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=size, replace=False))
    return x[rows]


def build_index(vectors: np.ndarray, ids: np.ndarray, plan: IndexPlan, use_gpu: bool | None = None,
                progress: Callable[[str], None] | None = None, seed: int = 0) -> faiss.Index:
    """The planned index over `vectors` with `ids` (IndexIDMap2 around it), trained and filled; a CPU index.

    With a GPU the IVF k-means (the expensive training step) runs on it through a GPU flat clustering index;
    codes are added on the CPU (PQ fast-scan and HNSW have no GPU implementation), so nothing needs moving back.
    """
    say = progress or (lambda _message: None)
    x = check_vectors(vectors, plan.dim)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (len(x),):
        raise IndexBuildError(f"{len(ids)} ids for {len(x)} vectors")
    if len(x) != plan.n:
        raise IndexBuildError(f"the plan is for {plan.n} vectors, got {len(x)}: plan again")
    index = faiss.index_factory(plan.dim, "IDMap2," + plan.factory, faiss.METRIC_INNER_PRODUCT)
    inner = faiss.downcast_index(index.index)
    if plan.kind == "hnsw":
        inner.hnsw.efConstruction = int(plan.params.get("efConstruction", inner.hnsw.efConstruction))
    ivf = _ivf(index)
    if not index.is_trained:
        sample = _training_sample(x, int(plan.params.get("train_n", len(x))), seed)
        gpu = uses_gpu(plan, use_gpu)
        if ivf is not None:
            ivf.cp.niter = int(plan.params.get("niter", ivf.cp.niter))
            ivf.cp.seed = seed
        resources = clustering = None
        if gpu and ivf is not None:
            resources = faiss.StandardGpuResources()
            clustering = faiss.index_cpu_to_gpu(resources, 0, faiss.IndexFlatIP(plan.dim))
            ivf.clustering_index = clustering
        say(f"training {plan.factory} on {len(sample)} of {len(x)} vectors{' (k-means on the GPU)' if gpu else ''}")
        started = time.perf_counter()
        try:
            index.train(sample)
        finally:
            if clustering is not None:
                ivf.clustering_index = None  # the GPU index is freed below; never leave a dangling pointer
            del clustering, resources
        say(f"trained in {time.perf_counter() - started:.1f}s")
    started = last = time.perf_counter()
    for start in range(0, len(x), ADD_BATCH):
        end = min(len(x), start + ADD_BATCH)
        index.add_with_ids(x[start:end], ids[start:end])
        now = time.perf_counter()
        if now - last >= PROGRESS_EVERY_S or end == len(x):
            say(f"added {end}/{len(x)} vectors ({end / max(now - started, 1e-9):.0f}/s)")
            last = now
    set_defaults(index, plan)
    return index


def set_defaults(index: faiss.Index, plan: IndexPlan) -> None:
    """Reasonable search settings before tuning (tune_index replaces them)."""
    if plan.kind == "hnsw":
        set_search_params(index, {"efSearch": 64})
    elif plan.kind == "ivfpq":
        params = {"nprobe": min(DEFAULT_NPROBE, plan.params.get("nlist", DEFAULT_NPROBE))}
        if plan.params.get("refine"):
            params["k_factor_rf"] = DEFAULT_K_FACTOR
        set_search_params(index, params)


def set_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    """Set efSearch / nprobe / k_factor_rf through any wrapper (IDMap2, refine); they are saved with the index."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, value)


def index_ids(index: faiss.Index) -> np.ndarray:
    """The id of each stored row in insertion order (row i of the database given to build_index)."""
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    return np.arange(index.ntotal, dtype=np.int64)


def search_index(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids), best first, shape (q, k); where the index holds fewer than k rows: id -1, score -inf."""
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if q.shape[1] != index.d:
        raise ValueError(f"queries are {q.shape[1]}-d, the index is {index.d}-d")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if index.ntotal == 0 or len(q) == 0:
        return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
    scores, ids = index.search(q, k)
    scores[ids < 0] = -np.inf
    return scores, ids


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """Result and best wall time of `repeats` calls (one call when it takes over 2 s: the noise is small then)."""
    best, result = float("inf"), None
    for i in range(max(1, repeats)):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
        if i == 0 and best > 2.0:
            break
    return result, best


class RecallBench:
    """Exact top-k of fixed queries (computed once), then recall@k and batch latency of the index as it is set."""

    def __init__(self, index: faiss.Index, database: np.ndarray, queries: np.ndarray, k: int = 10,
                 repeats: int = 3) -> None:
        self.index, self.repeats = index, repeats
        self.database = check_vectors(database, index.d)
        self.queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self.database) != index.ntotal:
            raise ValueError(f"the database has {len(self.database)} rows, the index {index.ntotal}: pass the "
                             "vectors the index was built from, in the same order")
        if len(self.queries) == 0:
            raise ValueError("no queries to measure recall with")
        self.k = min(k, len(self.database))
        (scores, _rows), seconds = _timed(
            lambda: faiss.knn(self.queries, self.database, self.k, metric=faiss.METRIC_INNER_PRODUCT), repeats)
        self.kth = scores[:, self.k - 1]
        self.exact_latency_ms = 1000.0 * seconds / len(self.queries)
        ids = index_ids(index)
        self._order = np.argsort(ids)
        self._sorted_ids = ids[self._order]

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(self._sorted_ids, ids), 0, len(self._sorted_ids) - 1)
        found = (ids >= 0) & (self._sorted_ids[pos] == ids)
        return np.where(found, self._order[pos], -1)

    def recall(self, ids: np.ndarray) -> float:
        """Share of the exact top-k found: a returned row counts when its true score reaches the k-th exact one."""
        rows = self._rows(ids[:, : self.k])
        true = np.einsum("qkd,qd->qk", self.database[np.maximum(rows, 0)], self.queries)
        hits = (rows >= 0) & (true >= self.kth[:, None] - TIE_EPS)
        return float(np.minimum(hits.sum(axis=1), self.k).sum() / (self.k * len(self.queries)))

    def measure(self) -> tuple[float, float]:
        """(recall@k, latency ms per query of one batch search of every query)."""
        (_scores, ids), seconds = _timed(lambda: self.index.search(self.queries, self.k), self.repeats)
        return self.recall(ids), 1000.0 * seconds / len(self.queries)


@dataclass
class TuneResult:
    """The chosen search setting, what it measured, and every setting tried."""

    param: str | None
    value: int | None
    recall_at_10: float
    latency_ms: float
    exact_latency_ms: float
    sweep: list[dict[str, Any]]
    settings: dict[str, int] = field(default_factory=dict)  # all parameters set (nprobe with k_factor_rf)
    met_target: bool = True
    reason: str = ""


def _ladders(index: faiss.Index, plan: IndexPlan, k: int) -> list[list[dict[str, int]]]:
    """Settings in groups of increasing cost within each group (a group stops once it reaches the target)."""
    if plan.kind == "hnsw":
        return [[{"efSearch": ef} for ef in EF_SEARCH_LADDER if ef >= k]]
    nlist = _ivf(index).nlist
    probes = [p for p in (2 ** i for i in range(12)) if p <= nlist]
    if plan.params.get("refine"):
        return [[{"nprobe": p, "k_factor_rf": kf} for p in probes] for kf in K_FACTOR_LADDER]
    return [[{"nprobe": p} for p in probes]]


def tune_index(index: faiss.Index, plan: IndexPlan, database: np.ndarray, queries: np.ndarray, k: int = 10,
               target_recall: float = 0.95, latency_ms: float = 10.0, repeats: int = 3) -> TuneResult:
    """Sweep efSearch (HNSW) or nprobe (x k_factor with re-ranking) against exact search on the same database.

    Picks the fastest setting reaching target_recall within latency_ms; else the highest recall within
    latency_ms; else the fastest setting. The choice is left set on the index (and saved with it).
    """
    bench = RecallBench(index, database, queries, k, repeats)
    if plan.kind == "flat":
        _, latency = bench.measure()
        return TuneResult(None, None, 1.0, latency, bench.exact_latency_ms,
                          [{"recall_at_10": 1.0, "latency_ms": latency}], {}, True, "exact search: nothing to tune")
    sweep: list[dict[str, Any]] = []
    for group in _ladders(index, plan, k):
        previous = -1.0
        for settings in group:
            set_search_params(index, settings)
            recall, latency = bench.measure()
            sweep.append({**settings, "recall_at_10": round(recall, 4), "latency_ms": round(latency, 4)})
            if recall >= target_recall or latency > 4 * latency_ms:
                break  # more of this parameter only costs more
            if recall <= previous + 1e-3 and settings.get("nprobe", 0) >= 8:
                break  # recall plateaued: the re-ranking depth, not nprobe, limits it
            previous = recall
    fast = [s for s in sweep if s["latency_ms"] <= latency_ms]
    reached = [s for s in fast if s["recall_at_10"] >= target_recall]
    if reached:
        best = min(reached, key=lambda s: s["latency_ms"])
        reason = f"fastest setting reaching recall@{k} {target_recall} within {latency_ms} ms/query"
    elif fast:
        best = max(fast, key=lambda s: (s["recall_at_10"], -s["latency_ms"]))
        reason = f"no setting reached recall@{k} {target_recall} within {latency_ms} ms/query: highest recall within it"
    else:
        best = min(sweep, key=lambda s: s["latency_ms"])
        reason = f"no setting answered within {latency_ms} ms/query: the fastest one"
    settings = {name: int(v) for name, v in best.items() if name not in ("recall_at_10", "latency_ms")}
    set_search_params(index, settings)
    param = "efSearch" if plan.kind == "hnsw" else "nprobe"
    return TuneResult(param, settings[param], best["recall_at_10"], best["latency_ms"], bench.exact_latency_ms,
                      sweep, settings, best["recall_at_10"] >= target_recall, reason)


def evaluate_index(index: faiss.Index, database: np.ndarray, queries: np.ndarray, k: int = 10,
                   repeats: int = 3) -> dict[str, float]:
    """recall@k vs exact search, latency and exact latency (ms/query, one batch) of the index as it is set."""
    bench = RecallBench(index, database, queries, k, repeats)
    recall, latency = bench.measure()
    return {"recall_at_10": recall, "latency_ms": latency, "exact_latency_ms": bench.exact_latency_ms,
            "queries": len(bench.queries), "k": bench.k}
