"""One model's evaluation from its stored vectors: retrieval, classification and DeepPatent, as a JSON-able report.

Everything here is pure (vectors and metadata in, numbers out) and deterministic for a seed:

- Retrieval (DesignCLIP protocol): every test view whose PNG decoded and that has a caption is one image-caption
  pair; text->image ranks all test images for each caption, image->text all captions for each image. A hit is
  counted ONLY for the paired row, as DesignCLIP's code does: another view of the same patent, or an identical
  caption of another view, counts as a miss. The 5k variant (like IMPACT's) scores a seeded sample of
  min(5000, n) pairs against each other.
- Classification: zero-shot (nearest class prompt) and a linear probe (train split -> test split) on the image
  vectors, for the 33 US design classes (`cls`, -1 left out) and the Locarno classes (`locarno_class` code ->
  position in the Locarno title list; codes not in it left out). Left-out rows are counted by reason.
- DeepPatent protocol on the test split (pipeline.eval_deeppatent): 1 and 2 query views per patent.

Rows with an unreadable image never contribute an image vector (their vector is zeros); every section says how
many rows it left out and why. The report's `arrays` entry holds what does not belong in JSON (the DIRA top-10).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classes import locarno_class_titles, us_design_class_titles
from pipeline.eval_classify import linear_probe, zero_shot
from pipeline.eval_deeppatent import (
    DEEPPATENT_KS,
    deeppatent_eval_by_patent,
    deeppatent_split,
    dira_top10,
    read_deeppatent_lists,
)
from pipeline.eval_metrics import first_relevant_rank, top_k_order

REPORT_SCHEMA = 1
RETRIEVAL_KS = (1, 5, 10)
CURVE_KS = (1, 2, 5, 10, 20, 50, 100)
PAIRS_5K = 5000
PROBE_TRAIN_MAX = 100_000  # labelled train views the linear probe fits on at most (a seeded sample beyond)
_BLOCK_ELEMENTS = 1 << 23  # scores computed at once (8M floats, 32 MB)
RETRIEVAL_PROTOCOL = (
    "DesignCLIP protocol: every test view with a readable image and a caption is one pair; a query's only "
    "relevant item is its own pair (another view of the same patent, or an equal caption, counts as a miss)")
DEEPPATENT_PROTOCOL = (
    "DeepPatent protocol: per test patent with >= 2 readable views, 1 or 2 views are queries and its other views "
    "go to the database with all single-view patents (distractors); relevant = same patent; mAP over the full "
    "database ranking, top-k = a relevant view within the first k")


class EvaluationError(RuntimeError):
    """Inputs that cannot be evaluated as given; the message says which and how many."""


# --------------------------------------------------------------------------------------------------- helpers


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None, int dict keys to strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _column(meta: Any, name: str) -> list[Any]:
    return meta.column(name).to_pylist() if name in meta.column_names else [None] * meta.num_rows


def _reasons(errors: Sequence[str | None]) -> list[str]:
    """The reason words of an embed error string ('image_unreadable: ...; caption_missing: ...')."""
    out: list[str] = []
    for error in errors:
        for part in (error or "").split("; "):
            if part.strip():
                out.append(part.split(":", 1)[0].strip())
    return out


def _count_left_out(meta: Any, keep: np.ndarray, fallback: str) -> dict[str, int]:
    """How many rows `keep` drops, by the reason recorded in their `error` (or `fallback` when none says)."""
    errors = _column(meta, "error")
    counts: Counter[str] = Counter()
    for i in np.flatnonzero(~keep):
        counts.update(set(_reasons([errors[i]])) or {fallback})
    return dict(sorted(counts.items()))


def _split_counts(vectors: Any) -> dict[str, Any]:
    meta = vectors.meta
    ok = np.asarray(_column(meta, "image_ok"), dtype=bool)
    text_ok = np.asarray([bool(v) if v is not None else True for v in _column(meta, "text_ok")], dtype=bool)
    return {"rows": int(meta.num_rows), "image_ok": int(ok.sum()), "text_ok": int(text_ok.sum()),
            "patents": len(set(_column(meta, "patent_id"))),
            "problems": dict(sorted(Counter(_reasons(_column(meta, "error"))).items()))}


def _blocks(rows: int, columns: int) -> list[slice]:
    step = max(1, _BLOCK_ELEMENTS // max(columns, 1))
    return [slice(s, min(rows, s + step)) for s in range(0, rows, step)]


def pair_ranks(queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of row i of `targets` for query i (scored by inner product; ties -> lower index first)."""
    n = targets.shape[0]
    ranks = np.zeros(queries.shape[0], dtype=np.int64)
    for block in _blocks(queries.shape[0], n):
        scores = queries[block] @ targets.T
        relevant = np.zeros(scores.shape, dtype=bool)
        relevant[np.arange(scores.shape[0]), np.arange(block.start, block.stop)] = True
        ranks[block] = first_relevant_rank(scores, relevant)
    return ranks


def _recall(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float | None]:
    """Hit@k from paired ranks (k clipped to the number of targets, as in pipeline.eval_metrics)."""
    if ranks.size == 0:
        return {str(k): None for k in ks}
    n = ranks.size
    return {str(k): float((ranks <= min(k, n)).mean()) for k in ks}


def top_indices(query_x: np.ndarray, db_x: np.ndarray, k: int) -> np.ndarray:
    """int64 (queries, min(k, n)) database indices best first, in query blocks (pipeline.eval_metrics tie rule)."""
    out = np.zeros((query_x.shape[0], min(k, db_x.shape[0])), dtype=np.int64)
    if db_x.shape[0] == 0:
        return out
    for block in _blocks(query_x.shape[0], db_x.shape[0]):
        out[block] = top_k_order(query_x[block] @ db_x.T, k)
    return out


# --------------------------------------------------------------------------------------------------- retrieval


def evaluate_retrieval(test: Any, seed: int = 0, pairs_5k: int = PAIRS_5K) -> dict[str, Any]:
    """Text->image and image->text R@1/5/10 over all test pairs and over a seeded sample of min(pairs_5k, n)."""
    meta = test.meta
    ok = np.asarray(_column(meta, "image_ok"), dtype=bool)
    text_ok = np.asarray([v if v is not None else True for v in _column(meta, "text_ok")], dtype=bool)
    captions = _column(meta, "caption")
    text_ok &= np.asarray([bool((c or "").strip()) for c in captions], dtype=bool)
    if test.text is None:
        return {"skipped": "image-only model: no text vectors, so no text-image retrieval", "pairs": 0}
    keep = ok & text_ok
    left_out = _count_left_out(meta, keep, "caption_missing")
    rows = np.flatnonzero(keep)
    base = {"protocol": RETRIEVAL_PROTOCOL, "ks": list(RETRIEVAL_KS), "left_out": left_out}
    if rows.size == 0:
        return {**base, "skipped": "no test view has both a readable image and a caption", "pairs": 0}
    image, text = test.image[rows], test.text[rows]

    def scored(idx: np.ndarray) -> dict[str, Any]:
        t2i = pair_ranks(text[idx], image[idx])
        i2t = pair_ranks(image[idx], text[idx])
        return {"pairs": int(idx.size), "text_to_image": _recall(t2i, RETRIEVAL_KS),
                "image_to_text": _recall(i2t, RETRIEVAL_KS),
                "median_rank": {"text_to_image": float(np.median(t2i)), "image_to_text": float(np.median(i2t))},
                "_ranks": (t2i, i2t)}

    everything = scored(np.arange(rows.size))
    take = min(int(pairs_5k), rows.size)
    sampled = take < rows.size
    idx = np.sort(np.random.default_rng(seed).choice(rows.size, size=take, replace=False)) if sampled \
        else np.arange(rows.size)
    small = scored(idx) if sampled else dict(everything)
    t2i, i2t = everything.pop("_ranks")
    small.pop("_ranks")
    curve_ks = [k for k in CURVE_KS if k <= rows.size] or [1]
    return {**base, "pairs": int(rows.size), "all": everything,
            "sample": {**small, "requested": int(pairs_5k), "sampled": sampled, "seed": seed},
            "curve": {"ks": curve_ks, "text_to_image": list(_recall(t2i, curve_ks).values()),
                      "image_to_text": list(_recall(i2t, curve_ks).values())}}


# --------------------------------------------------------------------------------------------------- classification


def locarno_labels(codes: Sequence[str | None], locarno_codes: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Locarno class codes ('02', '2', '02-01') -> index in `locarno_codes`, -1 for unknown; unmatched counts."""
    index = {str(c): i for i, c in enumerate(locarno_codes)}
    labels = np.full(len(codes), -1, dtype=np.int64)
    unmatched: Counter[str] = Counter()
    for i, code in enumerate(codes):
        text = (code or "").strip()
        if not text:
            continue
        head = text.split("-", 1)[0]
        key = next((c for c in (text, head, head.zfill(2)) if c in index), None)
        if key is None:
            unmatched[text] += 1
        else:
            labels[i] = index[key]
    return labels, dict(unmatched)


def _method_summary(result: dict[str, Any], image_left_out: int) -> dict[str, Any]:
    support = result["per_class_count"]
    left = {"unknown_class": int(result["left_out"])}
    if image_left_out:
        left["image_unreadable"] = int(image_left_out)
    return {"accuracy": result["accuracy"], "evaluated": int(result["evaluated"]), "left_out": left,
            "classes_with_support": int(sum(1 for s in support if s))}


def evaluate_classes(name: str, codes: Sequence[str], titles: dict[str, str], test: Any, test_labels: np.ndarray,
                     train: Any | None, train_labels: np.ndarray | None, prompt_features: np.ndarray | None,
                     seed: int = 0, probe_train_max: int = PROBE_TRAIN_MAX) -> dict[str, Any]:
    """Zero-shot and linear-probe accuracy for one class system, per-class table and confusion matrices."""
    ok = test.image_ok
    x, y = test.image[ok], np.asarray(test_labels)[ok]
    dropped = int((~ok).sum())
    out: dict[str, Any] = {"name": name, "classes": len(codes)}
    results: dict[str, dict[str, Any]] = {}
    if prompt_features is None:
        out["zero_shot"] = {"skipped": "image-only model: no class prompt vectors"}
    elif y.size == 0:
        out["zero_shot"] = {"skipped": "no test view with a readable image"}
    else:
        results["zero_shot"] = zero_shot(x, prompt_features, y, list(range(len(codes))))
        out["zero_shot"] = {**_method_summary(results["zero_shot"], dropped),
                            "prompts": int(prompt_features.shape[0])}
    if train is None:
        out["linear_probe"] = {"skipped": "no train split vectors"}
    else:
        train_ok = train.image_ok
        tx, ty = train.image[train_ok], np.asarray(train_labels)[train_ok]
        labelled_train = int((ty >= 0).sum())
        if labelled_train > probe_train_max:  # a seeded sample of the labelled views keeps the fit tractable
            pick = np.sort(np.random.default_rng(seed).choice(np.flatnonzero(ty >= 0), probe_train_max, replace=False))
            tx, ty = tx[pick], ty[pick]
        if not (ty >= 0).any():
            out["linear_probe"] = {"skipped": "no labelled train view with a readable image"}
        elif y.size == 0:
            out["linear_probe"] = {"skipped": "no test view with a readable image"}
        else:
            lp = linear_probe(tx, ty, x, y, len(codes), seed=seed)
            results["linear_probe"] = lp
            out["linear_probe"] = {
                **_method_summary(lp, dropped), "c": lp["c"], "c_sweep": lp["c_sweep"],
                "train_rows": lp["train_rows"], "train_labelled": labelled_train,
                "train_sampled": labelled_train > probe_train_max,
                "train_left_out": {"unknown_class": lp["train_left_out"],
                                   **({"image_unreadable": int((~train_ok).sum())} if (~train_ok).any() else {})},
                "train_classes": [codes[c] for c in lp["classes"]],
                "unseen_test_classes": [codes[c] for c in lp["unseen_test_classes"]]}
    labelled = y[y >= 0]
    support = np.bincount(labelled, minlength=len(codes)) if labelled.size else np.zeros(len(codes), np.int64)
    out["per_class"] = [
        {"code": code, "title": titles.get(code, ""), "support": int(support[i]),
         **{m: (r["per_class"][i] if support[i] else None) for m, r in results.items()}}
        for i, code in enumerate(codes)]
    predicted = set()
    for r in results.values():
        predicted |= {int(p) for p in np.asarray(r["predictions"])[y >= 0]}
    present = [i for i in range(len(codes)) if support[i] or i in predicted]
    out["confusion"] = {"codes": [codes[i] for i in present],
                        **{m: np.asarray(r["confusion"])[np.ix_(present, present)] for m, r in results.items()}}
    return out


# --------------------------------------------------------------------------------------------------- DeepPatent


def evaluate_deeppatent_split(test: Any, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """DeepPatent protocol on the test split's readable views: ({'1': ..., '2': ...}, DIRA arrays of vpq 1)."""
    ok = test.image_ok
    rows = np.flatnonzero(ok)
    x = test.image[rows]
    patents = [p or "" for p in _column(test.meta, "patent_id")]
    keys = _column(test.meta, "key")
    ok_patents = [patents[i] for i in rows]
    out: dict[str, Any] = {"protocol": DEEPPATENT_PROTOCOL, "ks": list(DEEPPATENT_KS),
                           "left_out": _count_left_out(test.meta, ok, "image_unreadable"), "views_per_query": {}}
    arrays: dict[str, Any] = {}
    for vpq in (1, 2):
        split = deeppatent_split(ok_patents, views_per_query=vpq, seed=seed)
        counts = {"patents": split.patents, "query_patents": split.query_patent_count,
                  "distractor_patents": split.distractor_patents}
        if split.query_rows.size == 0 or split.db_rows.size == 0:
            out["views_per_query"][str(vpq)] = {**counts, "queries": 0, "database": int(split.db_rows.size),
                                                "skipped": "no test patent has two readable views"}
            continue
        qx, dx = x[split.query_rows], x[split.db_rows]
        result = deeppatent_eval_by_patent(qx, dx, split.query_patents, split.db_patents)
        result.pop("per_query_ap")
        result["skipped_queries"] = result.pop("skipped")  # "skipped" is the reason word of an unmeasured section
        out["views_per_query"][str(vpq)] = {**result, **counts}
        if vpq == 1:
            arrays = {"dira_topk": dira_top10(top_indices(qx, dx, 10)),
                      "dira_query_keys": [keys[rows[i]] for i in split.query_rows],
                      "dira_db_keys": [keys[rows[i]] for i in split.db_rows]}
    return out, arrays


# --------------------------------------------------------------------------------------------------- the report


def evaluate_vectors(test: Any, train: Any | None, us_prompt_features: np.ndarray | None,
                     locarno_prompt_features: np.ndarray | None, locarno_codes: list[str], seed: int = 0,
                     pairs_5k: int = PAIRS_5K, probe_train_max: int = PROBE_TRAIN_MAX) -> dict[str, Any]:
    """The whole report of one model from its test (and train) SplitVectors and class prompt vectors.

    `us_prompt_features` rows follow the 33 US classes in `us_design_class_titles()` order (index == cls);
    `locarno_prompt_features` rows follow `locarno_codes`. None (image-only models) skips zero-shot. The result
    is JSON-able except `arrays` (DIRA top-10 and its key lists), which storage writes as files. The linear probes
    fit on at most `probe_train_max` labelled train views (a seeded sample beyond, said in the report).
    """
    us_titles = us_design_class_titles()
    us_codes = list(us_titles)
    loc_titles = locarno_class_titles()
    if us_prompt_features is not None and us_prompt_features.shape[0] != len(us_codes):
        raise EvaluationError(f"{us_prompt_features.shape[0]} US class prompt vectors for {len(us_codes)} classes")
    if locarno_prompt_features is not None and locarno_prompt_features.shape[0] != len(locarno_codes):
        raise EvaluationError(f"{locarno_prompt_features.shape[0]} Locarno prompt vectors for "
                              f"{len(locarno_codes)} codes")
    if test.meta.num_rows == 0:
        raise EvaluationError("the test split has no rows: nothing to evaluate")

    def us_labels(v: Any) -> np.ndarray:
        cls = np.asarray([-1 if c is None else int(c) for c in _column(v.meta, "cls")], dtype=np.int64)
        return np.where((cls >= 0) & (cls < len(us_codes)), cls, -1)

    test_loc, test_unmatched = locarno_labels(_column(test.meta, "locarno_class"), locarno_codes)
    train_loc = locarno_labels(_column(train.meta, "locarno_class"), locarno_codes)[0] if train is not None else None
    us = evaluate_classes("US design classes", us_codes, us_titles, test, us_labels(test), train,
                          us_labels(train) if train is not None else None, us_prompt_features, seed, probe_train_max)
    locarno = evaluate_classes("Locarno classes", list(locarno_codes), loc_titles, test, test_loc, train, train_loc,
                               locarno_prompt_features, seed, probe_train_max)
    locarno["unmatched_codes"] = test_unmatched
    deeppatent, arrays = evaluate_deeppatent_split(test, seed)
    report = {
        "schema": REPORT_SCHEMA, "seed": seed,
        "counts": {"test": _split_counts(test), "train": _split_counts(train) if train is not None else None},
        "retrieval": evaluate_retrieval(test, seed, pairs_5k),
        "classification": {"us": us, "locarno": locarno},
        "deeppatent": deeppatent,
    }
    return {**_clean(report), "arrays": arrays}


# --------------------------------------------------------------------------------------------------- real lists


def _encode_files(encoder: Any, files: list[str], batch_size: int,
                  progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Image vectors of `files` in batches; (vectors, [(file, problem)]) with failures left as zero rows."""
    from pipeline.train_data import IMAGE_ERRORS, decode_image

    out = np.zeros((len(files), encoder.dim), dtype=np.float32)
    bad: list[tuple[str, str]] = []
    for start in range(0, len(files), batch_size):
        images, rows = [], []
        for i in range(start, min(len(files), start + batch_size)):
            try:
                images.append(decode_image(Path(files[i]).read_bytes()))
                rows.append(i)
            except IMAGE_ERRORS as exc:  # OSError covers a missing file too
                bad.append((files[i], f"{type(exc).__name__}: {exc}"))
        if images:
            out[rows] = encoder.encode_images(images)
        if progress is not None:
            progress(min(len(files), start + batch_size), len(files))
    return out, bad


def _problem_message(bad: list[tuple[str, str]], what: str, limit: int = 5) -> str:
    first = "\n".join(f"  {f}: {p}" for f, p in bad[:limit])
    more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{len(bad)} DeepPatent {what} could not be read:\n{first}{more}"


def evaluate_deeppatent_lists(encoder: Any, query_list: str | Path, db_list: str | Path, image_root: str | Path,
                              batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                              ) -> tuple[dict[str, Any], np.ndarray]:
    """The real DeepPatent test lists: mAP/top-k and the DIRA top-10 (int64 (queries, 10), -1 padded).

    Relevance is by patent id from the file names. A missing or undecodable image is an error naming the first
    few and the count (a benchmark with silently dropped images would not be DeepPatent's any more).
    """
    query_files, db_files, query_patents, db_patents = read_deeppatent_lists(
        query_list, db_list, image_root, check_images=False)
    missing = [(f, "file not found") for f in [*query_files, *db_files] if not Path(f).is_file()]
    if missing:
        raise EvaluationError(_problem_message(missing, f"images (of {len(query_files) + len(db_files)}) under "
                                               f"{image_root}", limit=5))
    total = len(query_files) + len(db_files)

    def step(offset: int) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, _n: progress(offset + done, total))

    qx, bad_q = _encode_files(encoder, query_files, batch_size, step(0))
    dx, bad_d = _encode_files(encoder, db_files, batch_size, step(len(query_files)))
    if bad_q or bad_d:
        raise EvaluationError(_problem_message([*bad_q, *bad_d], f"images (of {total})"))
    result = deeppatent_eval_by_patent(qx, dx, query_patents, db_patents)
    metrics = {
        "protocol": "DeepPatent test lists: relevant = database images of the query's patent (id from file name)",
        "query_list": str(query_list), "db_list": str(db_list), "image_root": str(image_root),
        "mAP": result["mAP"], "top_k": result["top_k"], "k_used": result["k_used"],
        "queries": result["queries"], "evaluated": result["evaluated"], "skipped_queries": result["skipped"],
        "database": result["database"], "patents": len(set(query_patents) | set(db_patents)),
    }
    return _clean(metrics), dira_top10(top_indices(qx, dx, 10))
