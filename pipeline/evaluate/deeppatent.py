"""The DeepPatent image-retrieval protocol: query/database split, mAP + top-k accuracy, real lists, DIRA result.

Split (``deeppatent_split``): the views of one patent are relevant to each other. For every patent with at
least two views, ``views_per_query`` of its views (1 or 2, chosen with a seeded generator, patents visited in
sorted id order) become queries and its other views go to the database; at least one view always stays in the
database, so a two-view patent gives one query even when two are asked. Patents with a single view go to the
database only, as distractors. Relevant = database views of the query's patent.

Metrics (``deeppatent_eval``): features are L2-normalised per row (all-zero rows stay zero), scored by inner
product; mAP = mean over queries of average precision over the full database ranking (as DeepPatent defines
it); top-k accuracy = share of queries with a relevant view in the first k. Tie and edge rules are those of
``designclip.pipeline.evaluate.metrics`` (lower database index first, k clipped to the database size, queries without a
relevant view skipped and counted). ``deeppatent_eval_by_patent`` does the same from the patent id of every
query and database row, building relevance per query block (the real test split: ~13k x 39k).

Real DeepPatent lists (``read_deeppatent_lists``): one image per line, a path relative to the image root
(``I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png 1``), optional further columns (the released
lists carry an integer patent label) ignored; the patent id is the file name up to its first ``-``
(``USD0834581``). DIRA challenge output (``write_dira_result``): ``result.npy``, int64 (queries, 10), database
indices best first; with fewer than 10 database images the missing places hold -1.

Also here: ``map_at_max_bin_count`` (the second mAP definition, pytorch-metric-learning's), ``sheet_view`` (a
DeepPatent sheet cut and squared like a training view) and ``overlap_patents`` (scored patents a model trained on).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from designclip.pipeline.evaluate.metrics import first_relevant_rank, per_query_average_precision, top_k_order
from designclip.pipeline.render.sheet_image import decode_sheet, ink_box
from designclip.pipeline.render.view_image import crop_box, square_view
from PIL import Image

DEEPPATENT_KS = (1, 5, 10, 20, 50, 100)
DIRA_TOP = 10
_QUERY_BLOCK = 1024  # query rows scored at once in deeppatent_eval


@dataclass
class QueryDbSplit:
    query_rows: np.ndarray  # int64 row numbers (into the input) of the queries, ascending
    db_rows: np.ndarray  # int64 row numbers of the database, ascending
    query_patents: np.ndarray  # int64 patent code per query (equal code = same patent)
    db_patents: np.ndarray  # int64 patent code per database row
    patents: int = 0  # distinct patents in the input
    query_patent_count: int = 0  # patents that gave queries (>= 2 views)
    distractor_patents: int = 0  # single-view patents, database only

    @property
    def relevant(self) -> np.ndarray:
        """bool (queries, database): same patent. Built on demand: at 100k test views it is gigabytes."""
        return self.query_patents[:, None] == self.db_patents[None, :]


def deeppatent_split(patent_ids: Sequence[str], views_per_query: int = 1, seed: int = 0) -> QueryDbSplit:
    """Queries = 1 or 2 views per multi-view patent, database = everything else (see module docstring)."""
    if views_per_query not in (1, 2):
        raise ValueError(f"views_per_query must be 1 or 2, got {views_per_query}")
    names, codes = np.unique(np.array([str(p) for p in patent_ids], dtype=str), return_inverse=True)
    codes = codes.astype(np.int64).ravel()
    rng = np.random.default_rng(seed)
    order = np.argsort(codes, kind="stable")  # rows grouped by patent (sorted id), input order within a patent
    starts = np.searchsorted(codes[order], np.arange(names.size + 1))
    is_query = np.zeros(codes.size, dtype=bool)
    multi = 0
    for p in range(names.size):
        rows = order[starts[p]:starts[p + 1]]
        if rows.size < 2:
            continue
        multi += 1
        take = min(views_per_query, rows.size - 1)
        is_query[rng.permutation(rows)[:take]] = True
    query_rows = np.flatnonzero(is_query).astype(np.int64)
    db_rows = np.flatnonzero(~is_query).astype(np.int64)
    query_codes, db_codes = codes[query_rows], codes[db_rows]
    return QueryDbSplit(
        query_rows=query_rows,
        db_rows=db_rows,
        query_patents=query_codes,
        db_patents=db_codes,
        patents=int(names.size),
        query_patent_count=multi,
        distractor_patents=int(names.size - multi),
    )


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _evaluate(
    query_x: np.ndarray, db_x: np.ndarray, relevant_rows: Callable[[slice], np.ndarray], ks: Sequence[int]
) -> dict:
    """Score query blocks against the database; ``relevant_rows(block)`` gives the block's relevance rows."""
    q, d = _normalise(query_x), _normalise(db_x)
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"query features have {q.shape[1]} dims, database features {d.shape[1]}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"k values must be >= 1, got {ks}")
    aps = np.full(q.shape[0], np.nan)
    ranks = np.zeros(q.shape[0], dtype=np.int64)
    for start in range(0, q.shape[0], _QUERY_BLOCK):
        block = slice(start, min(start + _QUERY_BLOCK, q.shape[0]))
        scores = q[block] @ d.T
        relevant = relevant_rows(block)
        aps[block] = per_query_average_precision(scores, relevant)
        ranks[block] = first_relevant_rank(scores, relevant)
    evaluated = ranks > 0
    n = d.shape[0]
    top_k = {
        k: float((ranks[evaluated] <= min(k, n)).mean()) if evaluated.any() else float("nan") for k in ks
    }
    return {
        "mAP": float(np.nanmean(aps)) if evaluated.any() else float("nan"),
        "top_k": top_k,
        "k_used": {k: min(k, n) for k in ks},
        "queries": int(q.shape[0]),
        "evaluated": int(evaluated.sum()),
        "skipped": int((~evaluated).sum()),
        "database": int(n),
        "per_query_ap": aps,
    }


def deeppatent_eval(
    query_x: np.ndarray, db_x: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = DEEPPATENT_KS
) -> dict:
    """mAP and top-k accuracy of query features against database features (scored in query blocks).

    Returns mAP, top_k {k: accuracy}, k_used {k: min(k, database)}, queries, evaluated, skipped (queries with
    no relevant database view), database, and per_query_ap (nan where skipped).
    """
    relevant = np.asarray(relevant, dtype=bool)
    expected = (np.asarray(query_x).shape[0], np.asarray(db_x).shape[0])
    if relevant.shape != expected:
        raise ValueError(f"relevant has shape {relevant.shape}, expected {expected}")
    return _evaluate(query_x, db_x, lambda block: relevant[block], ks)


def deeppatent_eval_by_patent(
    query_x: np.ndarray,
    db_x: np.ndarray,
    query_patents: Sequence,
    db_patents: Sequence,
    ks: Sequence[int] = DEEPPATENT_KS,
) -> dict:
    """``deeppatent_eval`` with relevance = equal patent id, built per query block (no full (q, n) matrix)."""
    query_patents = np.asarray([str(p) for p in query_patents], dtype=str)
    db_patents = np.asarray([str(p) for p in db_patents], dtype=str)
    if query_patents.size != np.asarray(query_x).shape[0] or db_patents.size != np.asarray(db_x).shape[0]:
        raise ValueError("one patent id per query row and per database row is needed")
    _, codes = np.unique(np.concatenate([query_patents, db_patents]), return_inverse=True)
    codes = codes.ravel()
    query_codes, db_codes = codes[: query_patents.size], codes[query_patents.size :]
    return _evaluate(query_x, db_x, lambda block: query_codes[block, None] == db_codes[None, :], ks)


def patent_id_from_file(name: str) -> str | None:
    """``.../USD0864567-20191029-D00001.png`` -> ``USD0864567``; None when the name has no ``-``."""
    stem = Path(name).name
    head = stem.split("-", 1)[0]
    return head if "-" in stem and head else None


def _read_list(list_path: str | os.PathLike, image_root: Path, check_images: bool) -> tuple[list[str], list[str]]:
    files: list[str] = []
    patents: list[str] = []
    with open(list_path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            relative = text.split()[0]
            patent = patent_id_from_file(relative)
            if patent is None:
                raise ValueError(
                    f"{list_path}:{number}: cannot read a patent id from {relative!r} "
                    "(expected a file name like USD0864567-20191029-D00001.png)"
                )
            path = image_root / relative
            if check_images and not path.is_file():
                raise FileNotFoundError(f"{list_path}:{number}: image {relative!r} not found under {image_root}")
            files.append(str(path))
            patents.append(patent)
    if not files:
        raise ValueError(f"{list_path}: no images listed")
    return files, patents


def read_deeppatent_lists(
    query_list: str | os.PathLike,
    db_list: str | os.PathLike,
    image_root: str | os.PathLike,
    check_images: bool = True,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(query_files, db_files, query_patents, db_patents) from DeepPatent's list files; files are full paths."""
    root = Path(image_root)
    if check_images and not root.is_dir():
        raise FileNotFoundError(f"DeepPatent image root {root} is not a folder")
    query_files, query_patents = _read_list(query_list, root, check_images)
    db_files, db_patents = _read_list(db_list, root, check_images)
    return query_files, db_files, query_patents, db_patents


def dira_top10(scores_or_topk: np.ndarray) -> np.ndarray:
    """int64 (queries, 10) database indices best first: from scores (float) or ranked indices (integer); -1 pads."""
    array = np.asarray(scores_or_topk)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array (queries, database or ranks), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        top = array[:, :DIRA_TOP].astype(np.int64)
    elif np.issubdtype(array.dtype, np.floating):
        top = top_k_order(array, DIRA_TOP) if array.shape[1] else np.zeros((array.shape[0], 0), dtype=np.int64)
    else:
        raise ValueError(f"expected float scores or integer indices, got dtype {array.dtype}")
    if top.shape[1] < DIRA_TOP:
        top = np.concatenate([top, np.full((top.shape[0], DIRA_TOP - top.shape[1]), -1, dtype=np.int64)], axis=1)
    return top


def write_dira_result(path: str | os.PathLike, scores_or_topk: np.ndarray) -> Path:
    """Write the DIRA challenge ``result.npy`` atomically (temporary name in the same folder, then rename).

    ``path`` is the file, or an existing folder to hold ``result.npy``. Float input = scores (queries,
    database), ranked here; integer input = database indices already best first. Returns the written path.
    """
    target = Path(path)
    if target.is_dir():
        target = target / "result.npy"
    top = dira_top10(scores_or_topk)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.save(out, top)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def map_at_max_bin_count(query_x: np.ndarray, db_x: np.ndarray, query_patents: Sequence, db_patents: Sequence
                         ) -> float:
    """mAP as Higuchi and DesignCLIP's ir_main.py report it: pytorch-metric-learning's own AccuracyCalculator.

    ``mean_average_precision`` at k = ``max_bin_count`` (the most database images of one patent): the precision at
    each hit within the top k, summed and divided by min(relevant, k). Queries without a relevant database image
    are left out first (as in ``deeppatent_eval``); nan when none is left.
    """
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    query_patents = np.asarray([str(p) for p in query_patents], dtype=str)
    db_patents = np.asarray([str(p) for p in db_patents], dtype=str)
    _, codes = np.unique(np.concatenate([query_patents, db_patents]), return_inverse=True)
    codes = codes.ravel().astype(np.int64)
    query_codes, db_codes = codes[: query_patents.size], codes[query_patents.size :]
    keep = np.isin(query_codes, db_codes)
    if not keep.any() or db_codes.size == 0:
        return float("nan")
    calculator = AccuracyCalculator(include=("mean_average_precision",), k="max_bin_count")
    result = calculator.get_accuracy(
        torch.from_numpy(_normalise(query_x)[keep]), torch.from_numpy(query_codes[keep]),
        torch.from_numpy(_normalise(db_x)), torch.from_numpy(db_codes), ref_includes_query=False)
    return float(result["mean_average_precision"])


def sheet_view(png: bytes, size: int = 512, margin: float = 0.03) -> Image.Image:
    """A DeepPatent sheet as a training view: ink box -> margin -> centred on a white square of `size` -> RGB."""
    gray = decode_sheet(png, None)
    box = ink_box(gray)
    crop = crop_box(box, gray.size, margin) if box is not None else (0, 0, *gray.size)
    return square_view(gray, crop, size).convert("RGB")


def overlap_patents(scored: Sequence[str], trained: set[str] | frozenset[str]) -> list[str]:
    """The scored patents the model trained on (sorted): a benchmark the model has seen is not a benchmark."""
    return sorted({str(p) for p in scored} & set(trained))
