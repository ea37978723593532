"""Stable ids, building and tuning real FAISS indexes on clustered vectors, and the recall measure itself."""

from __future__ import annotations

import hashlib

import faiss
import numpy as np
import pytest
from designclip.pipeline.index import faiss_index
from designclip.pipeline.index.faiss_index import (
    IndexBuildError,
    RecallBench,
    build_index,
    check_vectors,
    evaluate_index,
    index_ids,
    key_ids,
    search_index,
    tune_index,
)
from designclip.pipeline.index.plan import IndexPlan, plan_index
from designclip.pipeline.index.synthetic import clustered_vectors

BIG = 8 * 10**9


@pytest.fixture(scope="module")
def data() -> dict:
    xb, xq = clustered_vectors(20_000, 64, n_queries=600, seed=3)
    keys = [f"USD09{i:05d}-{i % 7}" for i in range(len(xb))]
    return {"xb": xb, "xq": xq, "keys": keys, "ids": key_ids(keys)}


def test_key_ids_are_stable_non_negative_and_independent_of_position() -> None:
    ids = key_ids(["USD0909824-1", "USD0911449-3"])
    assert ids.dtype == np.int64 and (ids >= 0).all()
    # pinned: a change of hashing would silently re-key every saved index
    digest = hashlib.blake2b(b"USD0909824-1", digest_size=8).digest()
    assert ids[0] == int.from_bytes(digest, "big") & (2**63 - 1) == 2048542352290628471
    assert key_ids(["x", "USD0911449-3", "USD0909824-1"])[1:].tolist() == ids[::-1].tolist()


def test_key_ids_refuse_duplicates_and_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(IndexBuildError, match="'a' appears 2 times"):
        key_ids(["a", "b", "a"])
    with pytest.raises(IndexBuildError, match="non-empty key"):
        key_ids(["a", ""])

    class Constant:
        def digest(self) -> bytes:
            return b"\x01" * 8

    monkeypatch.setattr(faiss_index.hashlib, "blake2b", lambda *_a, **_k: Constant())
    with pytest.raises(IndexBuildError, match=r"id collision: keys \['a', 'b'\]"):
        key_ids(["a", "b"])


def test_unnormalised_or_zero_rows_are_refused_with_their_rows() -> None:
    x = np.eye(4, dtype=np.float32)
    x[2] = 0
    with pytest.raises(IndexBuildError, match=r"1 of 4 rows are not L2-normalised \(rows \[2\]; 1 all zero\)"):
        check_vectors(x)
    with pytest.raises(IndexBuildError, match="shape"):
        check_vectors(np.ones(4, np.float32))


def test_recall_by_hand_counts_ties_as_hits() -> None:
    db = np.array([[1, 0], [1, 0], [0, 1]], np.float32)  # rows 0 and 1 tie for query (1, 0)
    index = build_index(db, np.array([10, 11, 12]), IndexPlan("Flat", "flat", 3, 2, 0, "test"))
    bench = RecallBench(index, db, np.array([[1, 0]], np.float32), k=1)
    assert bench.recall(np.array([[10]])) == 1.0
    assert bench.recall(np.array([[11]])) == 1.0  # the tie: equally right
    assert bench.recall(np.array([[12]])) == 0.0
    assert bench.recall(np.array([[-1]])) == 0.0
    two = RecallBench(index, db, np.array([[1, 0], [0, 1]], np.float32), k=2)
    # query 1: top-2 {10, 11} (score 1); query 2: {12} then a tie of 10/11 (score 0)
    assert two.recall(np.array([[10, 12], [12, 11]])) == pytest.approx(3 / 4)


def test_flat_index_is_exact_and_maps_ids_back(data: dict) -> None:
    xb, keys, ids = data["xb"][:3000], data["keys"][:3000], data["ids"][:3000]
    plan = plan_index(len(xb), 64, BIG)
    index = build_index(xb, ids, plan)
    assert plan.kind == "flat" and index.ntotal == 3000 and index_ids(index).tolist() == ids.tolist()
    by_id = dict(zip(ids.tolist(), keys, strict=True))
    scores, found = search_index(index, xb[[5, 2999]], 3)
    assert [by_id[int(i)] for i in found[:, 0]] == [keys[5], keys[2999]]
    assert scores[:, 0] == pytest.approx([1.0, 1.0], abs=1e-5)
    tuned = tune_index(index, plan, xb, data["xq"][:100])
    assert (tuned.param, tuned.value, tuned.recall_at_10) == (None, None, 1.0)


def test_search_with_k_beyond_the_index_pads_with_minus_one() -> None:
    db = np.eye(3, dtype=np.float32)
    index = build_index(db, np.array([7, 8, 9]), IndexPlan("Flat", "flat", 3, 3, 0, "test"))
    scores, ids = search_index(index, db[0], 5)
    assert ids[0, 0] == 7 and set(ids[0, 1:3].tolist()) == {8, 9} and ids[0, 3:].tolist() == [-1, -1]
    assert scores[0, :3].tolist() == [1.0, 0.0, 0.0] and np.isneginf(scores[0, 3:]).all()
    with pytest.raises(ValueError, match="3-d"):
        search_index(index, np.ones((1, 4), np.float32), 1)


@pytest.mark.parametrize("forced", ["hnsw", "ivfpq"])
def test_build_and_tune_reach_the_target_recall(data: dict, forced: str) -> None:
    xb, xq, ids = data["xb"], data["xq"], data["ids"]
    plan = plan_index(len(xb), 64, BIG, flat_max=1000, hnsw_max=10**9 if forced == "hnsw" else 1000)
    assert plan.kind == forced
    index = build_index(xb, ids, plan)
    tuned = tune_index(index, plan, xb, xq[:300], target_recall=0.95)
    assert tuned.met_target and tuned.recall_at_10 >= 0.95 and tuned.sweep
    assert tuned.latency_ms <= 10.0 and tuned.exact_latency_ms > 0
    reaching = [s for s in tuned.sweep if s["recall_at_10"] >= 0.95]
    assert tuned.latency_ms == min(s["latency_ms"] for s in reaching)  # the cheapest setting reaching the target
    if forced == "hnsw":
        assert tuned.param == "efSearch" and faiss.downcast_index(index.index).hnsw.efSearch == tuned.value
    else:
        assert tuned.param == "nprobe" and faiss.extract_index_ivf(index).nprobe == tuned.value
        assert set(tuned.settings) == {"nprobe", "k_factor_rf"}
    held_out = evaluate_index(index, xb, xq[300:])  # queries the tuning never saw
    assert held_out["recall_at_10"] >= 0.93 and held_out["queries"] == 300
    # ids map back: database rows find themselves (their keys) among their top 10
    by_id = dict(zip(ids.tolist(), data["keys"], strict=True))
    _, found = search_index(index, xb[[123, 19_999]], 10)
    assert data["keys"][123] in [by_id[int(i)] for i in found[0]]
    assert data["keys"][19_999] in [by_id[int(i)] for i in found[1]]


def test_pq_without_re_ranking_keeps_the_best_setting_within_latency(data: dict) -> None:
    xb, xq = data["xb"], data["xq"]
    plan = plan_index(len(xb), 64, 1_700_000, flat_max=1000, hnsw_max=1000)  # ~85 B a vector: no refine copy
    assert plan.params["refine"] is None
    index = build_index(xb, data["ids"], plan)
    tuned = tune_index(index, plan, xb, xq[:200], target_recall=0.999, latency_ms=5.0)
    assert not tuned.met_target and "highest recall" in tuned.reason
    best = max(s["recall_at_10"] for s in tuned.sweep if s["latency_ms"] <= 5.0)
    assert tuned.recall_at_10 == best and faiss.extract_index_ivf(index).nprobe == tuned.value


def test_build_refuses_mismatched_inputs(data: dict) -> None:
    plan = plan_index(100, 64, BIG)
    with pytest.raises(IndexBuildError, match="99 ids for 100 vectors"):
        build_index(data["xb"][:100], data["ids"][:99], plan)
    with pytest.raises(IndexBuildError, match="the plan is for 100 vectors"):
        build_index(data["xb"][:50], data["ids"][:50], plan)


@pytest.mark.skipif(faiss_index.gpu_available(), reason="checks the error without a GPU")
def test_asking_for_a_gpu_without_one_is_an_error(data: dict) -> None:
    with pytest.raises(IndexBuildError, match="sees no GPU"):
        build_index(data["xb"], data["ids"], plan_index(20_000, 64, BIG, flat_max=1000, hnsw_max=1000), use_gpu=True)


@pytest.mark.gpu
@pytest.mark.skipif(not faiss_index.gpu_available(), reason="needs a CUDA GPU visible to FAISS")
def test_ivf_trains_on_the_gpu_and_comes_back_as_a_cpu_index(data: dict) -> None:
    plan = plan_index(20_000, 64, BIG, flat_max=1000, hnsw_max=1000)
    assert faiss_index.uses_gpu(plan) and not faiss_index.uses_gpu(plan_index(20_000, 64, BIG, flat_max=1000))
    index = build_index(data["xb"], data["ids"], plan, use_gpu=True)
    assert type(index) is faiss.IndexIDMap2 and faiss.extract_index_ivf(index).clustering_index is None
    tuned = tune_index(index, plan, data["xb"], data["xq"][:300])
    assert tuned.recall_at_10 >= 0.95
