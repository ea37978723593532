"""Retrieval and classification metrics against hand-computed cases: ties, empty relevance, k beyond the database."""

from __future__ import annotations

import numpy as np
import pytest
from designclip.pipeline.evaluate import metrics as eval_metrics
from designclip.pipeline.evaluate.metrics import (
    accuracy,
    average_precision,
    confusion_matrix,
    first_relevant_rank,
    mean_average_precision,
    per_class_accuracy,
    per_query_average_precision,
    rank_order,
    recall_at_k,
    recall_report,
    top_k_order,
    topk_accuracy,
)


def _reference_ap(scores: list[float], relevant: list[bool]) -> float | None:
    """Slow, obvious AP: sort (score desc, index asc) with Python's sort, walk the ranking."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    hits, total = 0, 0.0
    for rank, i in enumerate(order, start=1):
        if relevant[i]:
            hits += 1
            total += hits / rank
    return total / hits if hits else None


def test_rank_order_breaks_ties_by_lower_index():
    scores = np.array([[0.5, 0.9, 0.5, 0.9], [0.0, 0.0, 0.0, 0.0]])
    # row 0: the two 0.9s first (index 1 before 3), then the two 0.5s (0 before 2); row 1: all tied -> 0,1,2,3
    assert rank_order(scores).tolist() == [[1, 3, 0, 2], [0, 1, 2, 3]]


def test_top_k_order_matches_full_sort_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 37)).astype(np.float32)  # four distinct values: ties everywhere
    full = rank_order(scores)
    for k in (1, 2, 5, 10, 36, 37, 100):
        assert np.array_equal(top_k_order(scores, k), full[:, : min(k, 37)]), k


def test_recall_hand_computed_with_ties_empty_query_and_k_beyond_database():
    scores = np.array([
        [0.9, 0.8, 0.7, 0.6],  # relevant item 2 -> rank 3
        [0.1, 0.4, 0.4, 0.2],  # order 1,2,3,0 (1 before 2 on the tie): relevant item 2 -> rank 2
        [0.3, 0.2, 0.1, 0.0],  # no relevant item -> skipped
        [0.5, 0.5, 0.5, 0.5],  # all tied, relevant item 0 -> rank 1
    ])
    relevant = np.zeros((4, 4), dtype=bool)
    relevant[0, 2] = relevant[1, 2] = relevant[3, 0] = True
    assert first_relevant_rank(scores, relevant).tolist() == [3, 2, 0, 1]
    report = recall_report(scores, relevant, ks=(1, 2, 3, 10))
    # 3 evaluated queries with ranks 3, 2, 1: @1 -> 1/3, @2 -> 2/3, @3 -> 3/3, @10 clipped to @4 -> 3/3
    assert report["recall"] == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0, 10: 1.0})
    assert (report["queries"], report["evaluated"], report["skipped"], report["database"]) == (4, 3, 1, 4)
    assert report["k_used"] == {1: 1, 2: 2, 3: 3, 10: 4}
    assert recall_at_k(scores, relevant, ks=(1, 2)) == pytest.approx({1: 1 / 3, 2: 2 / 3})
    assert topk_accuracy(scores, relevant, ks=(1, 100)) == pytest.approx({1: 1 / 3, 100: 1.0})


def test_tie_changes_the_answer_both_ways():
    scores = np.array([[1.0, 1.0, 0.0]])
    # tie between items 0 and 1: item 0 ranks first, item 1 second
    assert recall_at_k(scores, np.array([[True, False, False]]), ks=(1,)) == {1: 1.0}
    assert recall_at_k(scores, np.array([[False, True, False]]), ks=(1,)) == {1: 0.0}
    assert average_precision(scores[0], np.array([False, True, False])) == pytest.approx(1 / 2)  # 1 hit at rank 2
    assert average_precision(scores[0], np.array([True, False, False])) == pytest.approx(1.0)


def test_average_precision_hand_computed():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    # relevant at ranks 1, 3, 5: precisions 1/1, 2/3, 3/5 -> AP = (1 + 2/3 + 3/5) / 3 = 34/45
    assert average_precision(scores, np.array([True, False, True, False, True])) == pytest.approx(34 / 45)
    assert average_precision(scores, np.ones(5, dtype=bool)) == pytest.approx(1.0)
    # one relevant item, ranked last of 5: precision 1/5
    assert average_precision(scores, np.array([False, False, False, False, True])) == pytest.approx(1 / 5)
    assert average_precision(scores, np.zeros(5, dtype=bool)) is None


def test_mean_average_precision_skips_and_counts_empty_queries():
    scores = np.array([
        [0.9, 0.8, 0.7, 0.6, 0.5],  # relevant ranks 1, 3, 5 -> 34/45
        [1.0, 1.0, 0.0, 0.0, 0.0],  # relevant item 1, behind tied item 0 -> rank 2 -> 1/2
        [0.1, 0.2, 0.3, 0.4, 0.5],  # no relevant item -> skipped
    ])
    relevant = np.array([
        [True, False, True, False, True],
        [False, True, False, False, False],
        [False, False, False, False, False],
    ])
    value, skipped = mean_average_precision(scores, relevant)
    # (34/45 + 1/2) / 2 = (68/90 + 45/90) / 2 = 113/180
    assert value == pytest.approx(113 / 180)
    assert skipped == 1
    aps = per_query_average_precision(scores, relevant)
    assert aps[:2] == pytest.approx([34 / 45, 1 / 2]) and np.isnan(aps[2])
    all_empty, skipped = mean_average_precision(scores, np.zeros_like(relevant))
    assert np.isnan(all_empty) and skipped == 3


@pytest.mark.parametrize("count_max", [0, 16])  # 0: AP by sorting rows; 16: AP by counting ranks
@pytest.mark.parametrize("density", [0.1, 0.6])
def test_vectorised_metrics_agree_with_a_slow_reference_across_blocks(monkeypatch, count_max, density):
    monkeypatch.setattr(eval_metrics, "_ROW_BLOCK_ELEMENTS", 64)  # several query blocks of 2 rows
    monkeypatch.setattr(eval_metrics, "_COUNT_MAX_RELEVANT", count_max)
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(23, 31)).astype(np.float64)  # heavy ties
    relevant = rng.random((23, 31)) < density
    relevant[3] = False  # one query without relevant items
    aps = per_query_average_precision(scores, relevant)
    ranks = first_relevant_rank(scores, relevant)
    for q in range(23):
        expected = _reference_ap(scores[q].tolist(), relevant[q].tolist())
        if expected is None:
            assert np.isnan(aps[q]) and ranks[q] == 0
        else:
            assert aps[q] == pytest.approx(expected)
            order = sorted(range(31), key=lambda i, q=q: (-scores[q, i], i))
            assert ranks[q] == 1 + next(r for r, i in enumerate(order) if relevant[q, i])


def test_large_score_matrix_is_handled_in_blocks():
    rng = np.random.default_rng(2)
    scores = rng.random((3000, 4000), dtype=np.float32)
    relevant = np.zeros(scores.shape, dtype=bool)
    relevant[np.arange(3000), np.arange(3000)] = True
    scores[np.arange(3000), np.arange(3000)] = 2.0  # the relevant item always scores highest
    assert recall_at_k(scores, relevant, ks=(1,)) == {1: 1.0}
    assert mean_average_precision(scores, relevant) == (pytest.approx(1.0), 0)


def test_bad_input_is_refused():
    scores = np.array([[0.1, np.nan]])
    with pytest.raises(ValueError, match="NaN"):
        rank_order(scores)
    with pytest.raises(ValueError, match="shape"):
        recall_at_k(np.zeros((2, 3)), np.zeros((2, 4), dtype=bool))
    with pytest.raises(ValueError, match=">= 1"):
        recall_at_k(np.zeros((2, 3)), np.zeros((2, 3), dtype=bool), ks=(0, 1))
    with pytest.raises(ValueError, match="2-D"):
        rank_order(np.zeros(3))


def test_classification_metrics_hand_computed():
    pred = np.array([0, 1, 1, 2, 0])
    target = np.array([0, 1, 2, 2, 2])
    assert accuracy(pred, target) == pytest.approx(3 / 5)  # positions 0, 1, 3 right
    per_class = per_class_accuracy(pred, target, 4)
    # class 0: 1/1, class 1: 1/1, class 2: rows 2,3,4 predicted 1,2,0 -> 1/3, class 3: no samples -> nan
    assert per_class[:3] == pytest.approx([1.0, 1.0, 1 / 3]) and np.isnan(per_class[3])
    matrix = confusion_matrix(pred, target, 4)
    assert matrix.dtype == np.int64
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]  # row true, column predicted
    assert np.isnan(accuracy(np.array([]), np.array([])))
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([4]), np.array([0]), 4)
    with pytest.raises(ValueError, match="outside"):
        per_class_accuracy(np.array([0]), np.array([-1]), 4)
