"""One model's evaluation from its stored vectors: retrieval, classification and DeepPatent, as a JSON-able report.

Everything here is pure (vectors and metadata in, numbers out) and deterministic for a seed. The report's stable
keys (what tables and comparisons read):

- ``retrieval.designclip_5k`` (headline: DesignCLIP's one view per patent, up to 5,000 patents),
  ``retrieval.all_views`` and ``retrieval.patent_level`` (designclip.pipeline.evaluate.retrieval);
- ``classification.linear_probe_val``, ``classification.designclip_probe`` (probes fitted on the val split, never
  on train), ``classification.prompted`` and ``classification.zero_shot_heldout_template`` (pipeline.evaluate.classes);
- ``deeppatent.map_official`` (full-ranking AP), ``deeppatent.map_pml`` (pytorch-metric-learning mAP at
  max_bin_count), ``deeppatent.p_at_1`` and ``deeppatent.overlap_patents``: of the real DeepPatent lists when
  they were scored, else of the DeepPatent protocol on the test split (``deeppatent.scored_on`` says which).

Rows with an unreadable image never contribute an image vector (their vector is zeros); every section says how
many rows it left out and why. The report's `arrays` entry holds what does not belong in JSON (the DIRA top-10).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.evaluate.classes import METHODS, PROBE_MAX, PROTOCOLS, evaluate_classes, locarno_labels
from designclip.pipeline.evaluate.deeppatent import (
    DEEPPATENT_KS,
    deeppatent_eval_by_patent,
    deeppatent_split,
    dira_top10,
    map_at_max_bin_count,
)
from designclip.pipeline.evaluate.metrics import top_k_order
from designclip.pipeline.evaluate.retrieval import HEADLINE_PATENTS, RETRIEVAL_KS, retrieval_protocols

__all__ = ["EvaluationError", "evaluate_vectors", "locarno_labels", "set_deeppatent_keys", "PROBE_MAX"]

REPORT_SCHEMA = 2  # 2: DesignCLIP protocols, val-split probes, both DeepPatent mAPs
_BLOCK_ELEMENTS = 1 << 23  # scores computed at once (8M floats, 32 MB)
DEEPPATENT_PROTOCOL = (
    "DeepPatent protocol: per test patent with >= 2 readable views, 1 or 2 views are queries and its other views "
    "go to the database with all single-view patents (distractors); relevant = same patent; mAP (official) over "
    "the full database ranking, mAP (pml) = pytorch-metric-learning mean_average_precision at max_bin_count, "
    "top-k = a relevant view within the first k")


class EvaluationError(RuntimeError):
    """Inputs that cannot be evaluated as given; the message says which and how many."""


# --------------------------------------------------------------------------------------------------- helpers


def json_safe(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None, int dict keys to strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
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


def top_indices(query_x: np.ndarray, db_x: np.ndarray, k: int) -> np.ndarray:
    """int64 (queries, min(k, n)) database indices best first, in query blocks (pipeline.evaluate.metrics tie rule)."""
    out = np.zeros((query_x.shape[0], min(k, db_x.shape[0])), dtype=np.int64)
    if db_x.shape[0] == 0:
        return out
    for block in _blocks(query_x.shape[0], db_x.shape[0]):
        out[block] = top_k_order(query_x[block] @ db_x.T, k)
    return out


# --------------------------------------------------------------------------------------------------- retrieval


def evaluate_retrieval(test: Any, seed: int = 0, pairs_5k: int = HEADLINE_PATENTS,
                       caption_fallback: np.ndarray | None = None) -> dict[str, Any]:
    """DesignCLIP's one-view-per-patent protocol (headline), all views and patent level (pipeline.evaluate.retrieval).

    `caption_fallback[i]` is True when test row i's caption is the metadata text a failed model caption fell
    back to: such rows are left out of the headline set and counted.
    """
    meta = test.meta
    if test.text is None:
        return {"skipped": "image-only model: no text vectors, so no text-image retrieval", "pairs": 0}
    ok = np.asarray(_column(meta, "image_ok"), dtype=bool)
    text_ok = np.asarray([v if v is not None else True for v in _column(meta, "text_ok")], dtype=bool)
    text_ok &= np.asarray([bool((c or "").strip()) for c in _column(meta, "caption")], dtype=bool)
    keep = ok & text_ok
    base = {"ks": list(RETRIEVAL_KS), "left_out": _count_left_out(meta, keep, "caption_missing")}
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return {**base, "skipped": "no test view has both a readable image and a caption", "pairs": 0}
    fallback = np.zeros(len(test), dtype=bool) if caption_fallback is None else np.asarray(caption_fallback, bool)
    if fallback.size != len(test):
        raise EvaluationError(f"{fallback.size} caption-fallback flags for {len(test)} test rows")
    columns = {name: _column(meta, name) for name in ("patent_id", "fig", "view")}
    patents = [columns["patent_id"][i] or "" for i in rows]
    protocols = retrieval_protocols(test.image[rows], test.text[rows], patents, [columns["fig"][i] for i in rows],
                                    [columns["view"][i] for i in rows], fallback[rows], seed, pairs_5k)
    return {**base, "pairs": int(rows.size), **protocols}


# --------------------------------------------------------------------------------------------------- classification


def _labels(vectors: Any, locarno_codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(US class index per row, Locarno index per row, unmatched Locarno codes); -1 = unknown."""
    n_us = len(us_design_class_titles())
    cls = np.asarray([-1 if c is None else int(c) for c in _column(vectors.meta, "cls")], dtype=np.int64)
    loc, unmatched = locarno_labels(_column(vectors.meta, "locarno_class"), locarno_codes)
    return np.where((cls >= 0) & (cls < n_us), cls, -1), loc, unmatched


def _check_probe_split(probe: Any) -> None:
    splits = sorted({s for s in _column(probe.meta, "split") if s})
    if "train" in splits:
        raise EvaluationError(f"the probes would fit on split(s) {', '.join(splits)}: a probe fitted on images the "
                              "encoder trained on overstates it; pass the val split (or the held-out year)")


def evaluate_classification(test: Any, probe: Any | None, prompts: dict[str, tuple[Any, Any]],
                            locarno_codes: Sequence[str], seed: int = 0, probe_max: int = PROBE_MAX,
                            prompt_info: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The four methods (stable keys) for the US and Locarno classes, plus per-class tables and confusions."""
    if probe is not None:
        _check_probe_split(probe)
    systems = {"us": ("US design classes", list(us_design_class_titles()), us_design_class_titles()),
               "locarno": ("Locarno classes", list(locarno_codes), locarno_class_titles())}
    test_us, test_loc, unmatched = _labels(test, locarno_codes)
    probe_us, probe_loc, _ = _labels(probe, locarno_codes) if probe is not None else (None, None, {})
    labels = {"us": (test_us, probe_us), "locarno": (test_loc, probe_loc)}
    out: dict[str, Any] = {m: {"protocol": PROTOCOLS[m], **(prompt_info or {}).get(m, {})} for m in METHODS}
    for position, (key, (name, codes, titles)) in enumerate(systems.items()):
        features = {m: (pair[position] if pair is not None else None) for m, pair in prompts.items()}
        for m, f in features.items():
            if f is not None and f.shape[0] != len(codes):
                raise EvaluationError(f"{f.shape[0]} {name} prompt vectors ({m}) for {len(codes)} classes")
        detail, methods = evaluate_classes(name, codes, titles, test, labels[key][0], probe, labels[key][1],
                                           features, seed, probe_max)
        out[key] = detail
        for method, summary in methods.items():
            out[method][key] = summary
    out["locarno"]["unmatched_codes"] = unmatched
    out["probe_split"] = sorted({s for s in _column(probe.meta, "split") if s}) if probe is not None else []
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
        result["mAP_pml"] = map_at_max_bin_count(qx, dx, split.query_patents, split.db_patents)
        out["views_per_query"][str(vpq)] = {**result, **counts}
        if vpq == 1:
            arrays = {"dira_topk": dira_top10(top_indices(qx, dx, 10)),
                      "dira_query_keys": [keys[rows[i]] for i in split.query_rows],
                      "dira_db_keys": [keys[rows[i]] for i in split.db_rows]}
    return out, arrays


def set_deeppatent_keys(report: dict[str, Any], overlap: dict[str, Any] | None = None) -> None:
    """The stable DeepPatent keys: of the real lists when scored, else of the test split with 1 view per query."""
    section = report["deeppatent"]
    lists = report.get("deeppatent_lists")
    source = lists if lists else (section.get("views_per_query") or {}).get("1") or {}
    measured = bool(source) and "skipped" not in source
    section.update({
        "scored_on": ("DeepPatent test lists" if lists else "release test split (DeepPatent protocol, 1 view per "
                      "query)") if measured else None,
        "map_official": source.get("mAP") if measured else None,
        "map_pml": source.get("mAP_pml") if measured else None,
        "p_at_1": json_safe((source.get("top_k") or {}).get("1", (source.get("top_k") or {}).get(1))) if measured
        else None,
        "overlap_patents": (overlap or {}).get("count"),
        "overlap": overlap or {"count": None, "checked": False, "note": "not checked"},
    })


# --------------------------------------------------------------------------------------------------- the report


def evaluate_vectors(test: Any, probe: Any | None, prompts: dict[str, tuple[Any, Any]], locarno_codes: list[str],
                     seed: int = 0, pairs_5k: int = HEADLINE_PATENTS, probe_max: int = PROBE_MAX,
                     caption_fallback: np.ndarray | None = None,
                     prompt_info: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole report of one model from its test (and val) SplitVectors and class prompt vectors.

    `probe` is the split the probes fit on (val, or the held-out year; a train split is refused). `prompts` maps
    "prompted" / "zero_shot_heldout_template" to (US prompt vectors in `us_design_class_titles()` order, Locarno
    prompt vectors in `locarno_codes` order); empty for image-only models. The result is JSON-able except
    `arrays` (DIRA top-10 and its key lists), which storage writes as files.
    """
    if test.meta.num_rows == 0:
        raise EvaluationError("the test split has no rows: nothing to evaluate")
    deeppatent, arrays = evaluate_deeppatent_split(test, seed)
    report = {
        "schema": REPORT_SCHEMA, "seed": seed,
        "counts": {"test": _split_counts(test), "probe": _split_counts(probe) if probe is not None else None},
        "retrieval": evaluate_retrieval(test, seed, pairs_5k, caption_fallback),
        "classification": evaluate_classification(test, probe, prompts, locarno_codes, seed, probe_max, prompt_info),
        "deeppatent": deeppatent,
    }
    set_deeppatent_keys(report)
    return {**json_safe(report), "arrays": arrays}
