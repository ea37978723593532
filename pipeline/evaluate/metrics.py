"""Retrieval and classification metrics in plain numpy, vectorised, with the edge cases spelled out.

Conventions shared by every function here (tested in tests/pipeline/evaluate/test_metrics.py):

- ``scores`` is a (queries, database) array, higher = better. ``relevant`` is a boolean array of the same shape.
- Ranking: database items sorted by descending score; equal scores are broken by the LOWER database index
  first (a stable sort), so a result never depends on the sort algorithm or on the machine.
- NaN scores are refused (ValueError): they have no place in a ranking and numpy would order them silently.
- A query with no relevant item has no recall and no average precision: it is left out of the mean and
  counted (``skipped``); ``average_precision`` returns None for it. When every query is skipped the mean is nan.
- ``k`` larger than the database is clipped to the database size ``n`` (hit@k == hit@n); the reports say so
  in ``k_used``. ``k`` < 1 is an error.
- Hit@k (recall@k in the CLIP retrieval sense, top-k accuracy in DeepPatent's) = 1 when at least one relevant
  item is in the first k ranks.
- Average precision (DeepPatent's definition) is over the FULL database ranking: the mean, over the query's
  relevant items, of precision at that item's rank.

Large inputs are processed in blocks of query rows (``_ROW_BLOCK_ELEMENTS`` scores per block), so a
10k x 10k score matrix never needs more than a few tens of MB of temporaries beyond the matrix itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_ROW_BLOCK_ELEMENTS = 1 << 22  # scores per processing block (4M: ~32 MB of int64 sort indices)
_COUNT_MAX_RELEVANT = 16  # up to this many relevant items per query, AP counts ranks instead of sorting


def _as_scores(scores: np.ndarray) -> np.ndarray:
    """Scores as a 2-D float array (float32 kept, everything else float64); NaN refused."""
    array = np.asarray(scores)
    if array.ndim != 2:
        raise ValueError(f"scores must be 2-D (queries, database), got shape {array.shape}")
    if array.dtype != np.float32 and array.dtype != np.float64:
        array = array.astype(np.float32 if array.dtype == np.float16 else np.float64)
    if np.isnan(array).any():
        raise ValueError("scores contain NaN; a ranking needs comparable scores")
    return array


def _as_relevant(relevant: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(relevant)
    if array.shape != shape:
        raise ValueError(f"relevant has shape {array.shape}, scores have shape {shape}")
    return array.astype(bool, copy=False)


def _blocks(rows: int, columns: int) -> Iterable[slice]:
    step = max(1, _ROW_BLOCK_ELEMENTS // max(columns, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _check_ks(ks: Iterable[int]) -> list[int]:
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"k values must be >= 1, got {ks}")
    return ks


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Per row, database indices by descending score; ties -> lower index first (stable)."""
    array = _as_scores(scores)
    order = np.empty(array.shape, dtype=np.int64)
    for block in _blocks(*array.shape):
        order[block] = np.argsort(-array[block], axis=1, kind="stable")
    return order


def top_k_order(scores: np.ndarray, k: int) -> np.ndarray:
    """The first min(k, n) entries of ``rank_order`` without sorting whole rows (same tie rule)."""
    array = _as_scores(scores)
    rows, n = array.shape
    k = min(_check_ks([k])[0], n)
    if k == n:
        return rank_order(array)
    out = np.empty((rows, k), dtype=np.int64)
    for block in _blocks(rows, n):
        part = array[block]
        candidates = np.argpartition(-part, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(part, candidates, axis=1).min(axis=1, keepdims=True)  # k-th largest value
        above = part > kth
        equal = part == kth
        need = k - above.sum(axis=1, keepdims=True)  # how many of the tied items make it, lowest index first
        chosen = above | (equal & (np.cumsum(equal, axis=1) <= need))
        index = np.nonzero(chosen)[1].reshape(-1, k)  # ascending database index within each row
        values = np.take_along_axis(part, index, axis=1)
        out[block] = np.take_along_axis(index, np.argsort(-values, axis=1, kind="stable"), axis=1)
    return out


def first_relevant_rank(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of each query's best-ranked relevant item (0 when it has none), without sorting."""
    array = _as_scores(scores)
    rel = _as_relevant(relevant, array.shape)
    ranks = np.zeros(array.shape[0], dtype=np.int64)
    columns = np.arange(array.shape[1])
    for block in _blocks(*array.shape):
        part, part_rel = array[block], rel[block]
        has = part_rel.any(axis=1)
        if not has.any():
            continue
        best = np.where(part_rel, part, -np.inf).max(axis=1, keepdims=True)
        first = np.argmax(part_rel & (part == best), axis=1)[:, None]  # lowest-index relevant item at the best score
        ahead = (part > best).sum(axis=1) + ((part == best) & (columns[None, :] < first)).sum(axis=1)
        ranks[block] = np.where(has, ahead + 1, 0)
    return ranks


def _relevant_ranks(part: np.ndarray, part_rel: np.ndarray, slots: int) -> np.ndarray:
    """1-based ranks of each row's relevant items (ascending index order, inf-padded to ``slots``) by counting."""
    columns = np.arange(part.shape[1])
    count = part_rel.sum(axis=1)
    index = np.argsort(~part_rel, axis=1, kind="stable")[:, :slots]  # relevant indices first, ascending
    values = np.take_along_axis(part, index, axis=1)
    ranks = np.full((part.shape[0], slots), np.inf)
    for j in range(slots):
        s, i = values[:, j : j + 1], index[:, j : j + 1]
        ahead = (part > s).sum(axis=1) + ((part == s) & (columns[None, :] < i)).sum(axis=1)
        ranks[:, j] = np.where(j < count, ahead + 1, np.inf)
    return ranks


def per_query_average_precision(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Average precision per query over the full ranking; nan for a query with no relevant item.

    Queries with few relevant items (<= ``_COUNT_MAX_RELEVANT``) get their hits' ranks counted without sorting
    (O(n) per relevant item); the others have their row sorted. Both follow the same tie rule.
    """
    array = _as_scores(scores)
    rel = _as_relevant(relevant, array.shape)
    aps = np.full(array.shape[0], np.nan)
    rank = np.arange(1, array.shape[1] + 1, dtype=np.float64)
    for block in _blocks(*array.shape):
        part, part_rel = array[block], rel[block]
        count = part_rel.sum(axis=1)
        total = np.zeros(count.size)
        few = (count > 0) & (count <= _COUNT_MAX_RELEVANT)
        if few.any():
            slots = int(count[few].max())
            ranks = np.sort(_relevant_ranks(part[few], part_rel[few], slots), axis=1)  # j-th hit at ranks[:, j]
            total[few] = (np.arange(1, slots + 1)[None, :] / ranks).sum(axis=1)  # inf padding adds 0
        many = count > _COUNT_MAX_RELEVANT
        if many.any():
            order = np.argsort(-part[many], axis=1, kind="stable")
            hits = np.take_along_axis(part_rel[many], order, axis=1)
            total[many] = np.where(hits, np.cumsum(hits, axis=1) / rank, 0.0).sum(axis=1)  # precision at each hit
        with np.errstate(invalid="ignore", divide="ignore"):
            aps[block] = np.where(count > 0, total / count, np.nan)
    return aps


def average_precision(scores_row: np.ndarray, relevant_row: np.ndarray) -> float | None:
    """AP of one query over the full database ranking; None when the query has no relevant item."""
    scores = np.asarray(scores_row)
    if scores.ndim != 1:
        raise ValueError(f"scores_row must be 1-D, got shape {scores.shape}")
    ap = per_query_average_precision(scores[None, :], np.asarray(relevant_row)[None, :])[0]
    return None if np.isnan(ap) else float(ap)


def mean_average_precision(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, int]:
    """(mAP over queries with >= 1 relevant item, number of queries skipped for having none)."""
    aps = per_query_average_precision(scores, relevant)
    kept = aps[~np.isnan(aps)]
    return (float(kept.mean()) if kept.size else float("nan")), int(aps.size - kept.size)


def recall_report(scores: np.ndarray, relevant: np.ndarray, ks: Iterable[int] = (1, 5, 10)) -> dict:
    """Hit@k per k with the counts behind it: queries, evaluated, skipped (no relevant), database, k_used."""
    ks = _check_ks(ks)
    ranks = first_relevant_rank(scores, relevant)
    n = int(np.asarray(scores).shape[1])
    evaluated = ranks > 0
    recall = {}
    for k in ks:
        hits = (ranks[evaluated] <= min(k, n)).sum()
        recall[k] = float(hits / evaluated.sum()) if evaluated.any() else float("nan")
    return {
        "recall": recall,
        "queries": int(ranks.size),
        "evaluated": int(evaluated.sum()),
        "skipped": int(ranks.size - evaluated.sum()),
        "database": n,
        "k_used": {k: min(k, n) for k in ks},
    }


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, ks: Iterable[int] = (1, 5, 10)) -> dict[int, float]:
    """Share of queries (with >= 1 relevant item) having a relevant item in the top k; k clipped to n."""
    return recall_report(scores, relevant, ks)["recall"]


def topk_accuracy(
    scores: np.ndarray, relevant: np.ndarray, ks: Iterable[int] = (1, 5, 10, 20, 50, 100)
) -> dict[int, float]:
    """DeepPatent top-k accuracy: same as ``recall_at_k`` (k > database size -> k clipped to n)."""
    return recall_report(scores, relevant, ks)["recall"]


def _check_labels(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred has {pred.size} entries, target has {target.size}")
    return pred, target


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Share of equal entries; nan when there is nothing to score."""
    pred, target = _check_labels(pred, target)
    return float((pred == target).mean()) if target.size else float("nan")


def _check_range(values: np.ndarray, num_classes: int, what: str) -> None:
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        bad = sorted({int(v) for v in values[(values < 0) | (values >= num_classes)]})[:10]
        raise ValueError(f"{what} outside 0..{num_classes - 1}: {bad}")


def per_class_accuracy(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy among the samples of each target class; nan for classes without samples."""
    pred, target = _check_labels(pred, target)
    _check_range(target, num_classes, "target classes")
    total = np.bincount(target.astype(np.int64), minlength=num_classes).astype(np.float64)
    right = np.bincount(target[pred == target].astype(np.int64), minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, right / total, np.nan)


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 (num_classes, num_classes) counts: row = true class, column = predicted class."""
    pred, target = _check_labels(pred, target)
    _check_range(target, num_classes, "target classes")
    _check_range(pred, num_classes, "predicted classes")
    flat = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
