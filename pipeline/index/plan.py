"""Choose a FAISS index from the vector count and a memory budget: exact when small, HNSW when it fits, IVF-PQ beyond.

Every index searches by inner product on L2-normalised rows (= cosine). Memory estimates count what the index
keeps in RAM: the vectors or codes, the HNSW graph, IVF list ids and centroids, the refine copy and the
IndexIDMap2 that maps FAISS rows to the stable sample ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from designclip.storage.vocabulary import human_bytes

ID_MAP_BYTES = 48  # IndexIDMap2 per vector: the 8-byte id plus its reverse-map (hash table) entry
HNSW_M = 32  # graph degree: 2*M links on level 0; 32 reaches recall@10 0.95 on 512-d embeddings at low efSearch
HNSW_EF_CONSTRUCTION = 40  # FAISS's default build beam
# HNSW builds on the CPU only (no GPU build), inserting one vector after another: 164 s for 1M x 512 on 2 cores
# (benchmarks/index.py; 7 s for 100k), growing faster than n, so tens of minutes to hours beyond a few million on
# small machines. Up to 1M the build stays within minutes and needs no training; beyond, IVF (k-means on a capped
# sample, on the GPU when present) builds faster (80 s at 1M on the same machine, same recall target).
HNSW_MAX = 1_000_000
NLIST_MIN, NLIST_MAX = 16, 65_536
MIN_POINTS_PER_LIST = 39  # FAISS k-means warns below 39 training points per centroid
TRAIN_POINTS_PER_LIST = 40
TRAIN_MIN, TRAIN_MAX = 65_536, 1_000_000  # >= 256 points per PQ centroid; capped so training stays minutes
KMEANS_ITERATIONS = 10  # coarse k-means iterations; more buys little recall for IVF lists
# Re-ranking store for the PQ candidates: (factory suffix, name, bytes per dimension). Flat re-ranks exactly;
# fp16 and 8-bit scalar quantisation are near-exact at a half and a quarter of the memory.
REFINE_TIERS = (("RFlat", "flat", 4), ("Refine(SQfp16)", "sqfp16", 2), ("Refine(SQ8)", "sq8", 1))
DEFAULT_FLAT_MAX = 50_000


class PlanError(ValueError):
    """No index fits: the message says which budget would."""


@dataclass(frozen=True)
class IndexPlan:
    """The chosen FAISS factory string (without the IDMap2 wrapper), its kind, size estimate and why."""

    factory: str
    kind: str  # "flat" | "hnsw" | "ivfpq"
    n: int
    dim: int
    est_bytes: int
    reason: str
    params: dict[str, Any] = field(default_factory=dict)


def flat_bytes(n: int, dim: int) -> int:
    return n * (4 * dim + ID_MAP_BYTES)


def hnsw_bytes(n: int, dim: int, m: int = HNSW_M) -> int:
    """Vectors + level-0 links (2M int32) + upper levels (~M links on 1/M of the nodes) + level/offset tables."""
    return n * (4 * dim + 2 * m * 4 + math.ceil(4 * m / (m - 1)) + 12 + ID_MAP_BYTES)


def ivfpq_bytes(n: int, dim: int, nlist: int, pq_m: int, refine_bytes_per_dim: int = 0) -> int:
    """4-bit PQ codes (pq_m/2 bytes, lists padded to blocks of 32) + list ids + centroids + refine copy."""
    codes = n * (math.ceil(pq_m / 2) + 8 + ID_MAP_BYTES + refine_bytes_per_dim * dim)
    padding = nlist * 32 * math.ceil(pq_m / 2)
    return codes + padding + nlist * dim * 4 + 16 * dim * 4


def choose_nlist(n: int) -> int:
    """~4*sqrt(n) lists rounded to a power of two, clamped so k-means has >= 39 points per list."""
    nlist = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    most = 2 ** int(math.log2(max(1, n // MIN_POINTS_PER_LIST)))
    return int(max(NLIST_MIN, min(NLIST_MAX, nlist, most)))


def train_size(n: int, nlist: int) -> int:
    """Training sample: 40 points per list, at least 64k (PQ codebooks), at most 1M, never more than n."""
    return int(min(n, max(TRAIN_MIN, min(TRAIN_MAX, TRAIN_POINTS_PER_LIST * nlist))))


def _pq_sizes(dim: int) -> list[int]:
    """4-bit PQ sub-quantizer counts that divide dim, largest (most accurate) first: dim/2 .. dim/16."""
    return [dim // s for s in (2, 4, 8, 16) if dim % s == 0 and dim // s >= 2] or [1]


def plan_index(n: int, dim: int, memory_budget_bytes: int, flat_max: int = DEFAULT_FLAT_MAX,
               hnsw_max: int = HNSW_MAX) -> IndexPlan:
    """The index for n vectors of dim within the budget: Flat, else HNSW, else IVF + 4-bit PQ (+ re-ranking)."""
    if n <= 0 or dim <= 0:
        raise PlanError(f"cannot plan an index over {n} vectors of dimension {dim}")
    budget = f"{human_bytes(memory_budget_bytes)} budget"
    flat = flat_bytes(n, dim)
    if n <= flat_max and flat <= memory_budget_bytes:
        return IndexPlan("Flat", "flat", n, dim, flat,
                         f"{n} vectors <= {flat_max}: exact search is fast enough and needs no training "
                         f"({human_bytes(flat)} of the {budget})", {})
    hnsw = hnsw_bytes(n, dim)
    why_not_flat = (f"{n} vectors > {flat_max} (exact search too slow)" if n > flat_max
                    else f"exact vectors ({human_bytes(flat)}) exceed the {budget}")
    if n <= hnsw_max and hnsw <= memory_budget_bytes:
        return IndexPlan(f"HNSW{HNSW_M},Flat", "hnsw", n, dim, hnsw,
                         f"{why_not_flat}; HNSW graph + vectors ({human_bytes(hnsw)}) fit the {budget} and {n} <= "
                         f"{hnsw_max} keeps the CPU-only graph build short",
                         {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
    why_not_hnsw = (f"{n} vectors > {hnsw_max} (HNSW builds on the CPU only, too slow beyond)" if n > hnsw_max
                    else f"HNSW ({human_bytes(hnsw)}) exceeds the {budget}")
    nlist = choose_nlist(n)
    params = {"nlist": nlist, "train_n": train_size(n, nlist), "niter": KMEANS_ITERATIONS}
    first = [m for m in _pq_sizes(dim) if m <= dim // 4] or _pq_sizes(dim)[-1:]
    pq_m = first[0]  # dim/4 sub-quantizers of 4 dims at 4 bits: a fast first pass, re-ranked below
    for suffix, name, per_dim in REFINE_TIERS:
        est = ivfpq_bytes(n, dim, nlist, pq_m, per_dim)
        if est <= memory_budget_bytes:
            return IndexPlan(f"IVF{nlist},PQ{pq_m}x4fs,{suffix}", "ivfpq", n, dim, est,
                             f"{why_not_flat}; {why_not_hnsw}; IVF with {nlist} lists (~4*sqrt(n)) and 4-bit PQ "
                             f"fast-scan codes ({pq_m} sub-quantizers), candidates re-ranked from a {name} copy "
                             f"of the vectors so recall can reach the target ({human_bytes(est)} within the {budget})",
                             {**params, "pq_m": pq_m, "refine": name})
    for m in _pq_sizes(dim):
        est = ivfpq_bytes(n, dim, nlist, m)
        if est <= memory_budget_bytes:
            return IndexPlan(f"IVF{nlist},PQ{m}x4fs", "ivfpq", n, dim, est,
                             f"{why_not_flat}; {why_not_hnsw}; no re-ranking copy fits the {budget}: IVF with "
                             f"{nlist} lists and the largest 4-bit PQ that fits ({m} sub-quantizers, "
                             f"{human_bytes(est)}); expect recall@10 below 0.95 (more memory allows re-ranking)",
                             {**params, "pq_m": m, "refine": None})
    smallest = ivfpq_bytes(n, dim, nlist, _pq_sizes(dim)[-1])
    raise PlanError(f"no index over {n} x {dim} vectors fits the {budget}: the smallest IVF-PQ needs "
                    f"{human_bytes(smallest)}; raise the memory budget")
