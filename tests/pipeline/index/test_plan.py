"""plan_index: which index for how many vectors and how much memory, with hand-computed sizes at the boundaries."""

from __future__ import annotations

import pytest
from designclip.pipeline.index.plan import (
    HNSW_MAX,
    PlanError,
    choose_nlist,
    flat_bytes,
    hnsw_bytes,
    ivfpq_bytes,
    plan_index,
    train_size,
)

GB = 10**9


def test_memory_estimates_by_hand() -> None:
    # flat: 64 floats (256 B) + 48 B of id map per vector
    assert flat_bytes(1000, 64) == 1000 * 304
    # hnsw M=32: 256 B vectors + 64 links * 4 B + ceil(128/31)=5 B upper levels + 12 B tables + 48 B ids
    assert hnsw_bytes(1000, 64) == 1000 * (256 + 256 + 5 + 12 + 48)
    # ivfpq: 16 4-bit codes = 8 B + 8 B list id + 48 B ids + 256 B flat refine; 32-vector blocks per list; centroids
    assert ivfpq_bytes(1000, 64, 16, 16, 4) == 1000 * (8 + 8 + 48 + 256) + 16 * 32 * 8 + 16 * 64 * 4 + 16 * 64 * 4


def test_small_collections_are_searched_exactly() -> None:
    plan = plan_index(1000, 512, 8 * GB)
    assert (plan.kind, plan.factory, plan.est_bytes) == ("flat", "Flat", flat_bytes(1000, 512))
    assert "exact" in plan.reason and plan.params == {}
    assert plan_index(50_000, 512, 8 * GB).kind == "flat"  # the default flat_max boundary is inclusive
    assert plan_index(50_001, 512, 8 * GB).kind == "hnsw"


def test_medium_collections_get_hnsw_while_it_fits_the_budget() -> None:
    n, dim = 1_000_000, 512
    need = hnsw_bytes(n, dim)
    plan = plan_index(n, dim, need)
    assert (plan.kind, plan.factory, plan.est_bytes) == ("hnsw", "HNSW32,Flat", need)
    assert plan.params == {"M": 32, "efConstruction": 40}
    assert "HNSW graph + vectors" in plan.reason and "fit the" in plan.reason
    over = plan_index(n, dim, need - 1)
    assert over.kind == "ivfpq" and "HNSW (" in over.reason and "exceeds the" in over.reason


def test_huge_collections_get_ivf_pq_with_re_ranking_when_the_raw_vectors_fit() -> None:
    plan = plan_index(HNSW_MAX + 1, 512, 64 * GB)
    assert plan.kind == "ivfpq" and plan.factory == "IVF4096,PQ128x4fs,RFlat"  # 4 * sqrt(2e6) = 5657 -> 2^12
    assert plan.params["nlist"] == 4096 and plan.params["refine"] == "flat"
    assert "HNSW builds on the CPU only" in plan.reason and "re-ranked from a flat copy" in plan.reason
    assert plan.params["train_n"] == 40 * 4096


@pytest.mark.parametrize(("per_vector", "suffix", "refine"), [
    (64 + 8 + 48 + 2048, "RFlat", "flat"), (64 + 8 + 48 + 1024, "Refine(SQfp16)", "sqfp16"),
    (64 + 8 + 48 + 512, "Refine(SQ8)", "sq8")])
def test_the_re_ranking_copy_shrinks_with_the_budget(per_vector: int, suffix: str, refine: str) -> None:
    n, dim = 10_000_000, 512
    overhead = 16384 * 32 * 64 + 16384 * dim * 4 + 16 * dim * 4
    plan = plan_index(n, dim, n * per_vector + overhead)
    assert plan.factory == f"IVF16384,PQ128x4fs,{suffix}" and plan.params["refine"] == refine
    assert plan.est_bytes == n * per_vector + overhead


def test_without_room_for_re_ranking_the_largest_pq_that_fits_is_used() -> None:
    n, dim = 10_000_000, 512
    plan = plan_index(n, dim, 2 * GB)  # 200 B per vector: no refine copy, PQ256x4 (128 B codes) fits
    assert plan.factory == "IVF16384,PQ256x4fs" and plan.params["refine"] is None
    assert "expect recall@10 below 0.95" in plan.reason
    assert plan_index(n, dim, GB).factory == "IVF16384,PQ64x4fs"  # 100 B per vector: 32 B codes + 56 B ids
    with pytest.raises(PlanError, match="raise the memory budget"):
        plan_index(n, dim, 500 * 10**6)


def test_a_small_collection_over_its_budget_is_not_flat() -> None:
    plan = plan_index(1000, 64, 100_000)
    assert plan.kind == "ivfpq" and "exceed the" in plan.reason


def test_nlist_and_training_sample_bounds() -> None:
    assert choose_nlist(1_000_000) == 4096  # 4 * sqrt(1e6) = 4000 -> 2^12
    assert choose_nlist(10_000_000) == 16384  # 12649 -> 2^14 (log2 13.6 rounds up)
    assert choose_nlist(10**10) == 65536  # clamped
    assert choose_nlist(20_000) == 512  # 566 -> 512, and 20000 // 39 = 512 still has 39 points a list
    assert choose_nlist(3000) == 64  # 219 -> 256, but 3000 // 39 = 76 allows 64
    assert choose_nlist(100) == 16  # floor
    assert train_size(20_000, 512) == 20_000  # never more than n
    assert train_size(1_000_000, 4096) == 163_840  # 40 points per list
    assert train_size(10**9, 65536) == 1_000_000  # capped
    assert train_size(10**9, 16) == 65_536  # at least 64k for the PQ codebooks


def test_nonsense_sizes_are_refused() -> None:
    with pytest.raises(PlanError):
        plan_index(0, 512, GB)
