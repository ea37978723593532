"""Caption <-> image retrieval under DesignCLIP's protocol (one view per patent), all views, and per patent.

- ``designclip_5k`` (the headline, DesignCLIP's protocol): a seeded sample of up to 5,000 test patents, ONE view
  each (the first perspective view, as the grant's front-page drawing D00000 usually is, else the first FIG.);
  caption i's only relevant image is image i and back. Views whose caption fell back to the metadata text
  (which names the class) are left out of this set and counted.
- ``all_views`` (harder, secondary): every test view with a readable image and a caption is one pair; only the
  paired row is a hit, so another view of the same patent counts as a miss.
- ``patent_level``: the all-views pairs, but any view (image or caption) of the query's patent is a hit.

Ranking follows pipeline.evaluate.metrics (inner product, ties -> lower index first, k clipped to the targets).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from designclip.pipeline.evaluate.metrics import first_relevant_rank

RETRIEVAL_KS = (1, 5, 10)
CURVE_KS = (1, 2, 5, 10, 20, 50, 100)
HEADLINE_PATENTS = 5000
_BLOCK_ELEMENTS = 1 << 23  # scores computed at once (8M floats, 32 MB)
PROTOCOLS = {
    "designclip_5k": "DesignCLIP protocol: a seeded sample of up to 5,000 test patents, one view each (the first "
                     "perspective view, else the first FIG.); a caption's only hit is its own image and back; views "
                     "whose caption fell back to metadata text are left out",
    "all_views": "all test views: every view with a readable image and a caption is one pair; only the paired row "
                 "is a hit (another view of the same patent counts as a miss)",
    "patent_level": "all test views, patent level: any view of the query's patent is a hit",
}
_FIG = re.compile(r"(\d+)")


def fig_order(fig: str | None) -> tuple[int, str]:
    """Natural FIG. order: '2' < '10' < '10-A'; a FIG. without a number last."""
    match = _FIG.search(fig or "")
    return (int(match.group(1)) if match else 1 << 30, fig or "")


def headline_rows(patents: Sequence[str], figs: Sequence[str | None], views: Sequence[str | None],
                  eligible: np.ndarray, max_patents: int = HEADLINE_PATENTS, seed: int = 0) -> np.ndarray:
    """Row per patent (first perspective view, else first FIG.) among `eligible` rows, for <= max_patents patents."""
    best: dict[str, tuple[tuple[int, tuple[int, str]], int]] = {}
    for i in np.flatnonzero(eligible):
        rank = (0 if "perspective" in (views[i] or "") else 1, fig_order(figs[i]))
        if patents[i] not in best or rank < best[patents[i]][0]:
            best[patents[i]] = (rank, int(i))
    chosen = [best[p][1] for p in sorted(best)]
    if len(chosen) > max_patents:
        pick = np.random.default_rng(seed).choice(len(chosen), size=max_patents, replace=False)
        chosen = [chosen[j] for j in pick]
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _blocks(rows: int, columns: int) -> list[slice]:
    step = max(1, _BLOCK_ELEMENTS // max(columns, 1))
    return [slice(s, min(rows, s + step)) for s in range(0, rows, step)]


def ranks(queries: np.ndarray, targets: np.ndarray, query_groups: np.ndarray | None = None,
          target_groups: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of the first hit per query: target i for query i, or any target of the query's group."""
    out = np.zeros(queries.shape[0], dtype=np.int64)
    for block in _blocks(queries.shape[0], targets.shape[0]):
        scores = queries[block] @ targets.T
        if query_groups is None or target_groups is None:
            relevant = np.zeros(scores.shape, dtype=bool)
            relevant[np.arange(scores.shape[0]), np.arange(block.start, block.stop)] = True
        else:
            relevant = query_groups[block, None] == target_groups[None, :]
        out[block] = first_relevant_rank(scores, relevant)
    return out


def recall(found: np.ndarray, ks: Sequence[int], targets: int) -> dict[str, float | None]:
    """Hit@k from first-hit ranks (k clipped to the number of targets)."""
    if found.size == 0:
        return {str(k): None for k in ks}
    return {str(k): float((found <= min(k, targets)).mean()) for k in ks}


def scored(image: np.ndarray, text: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
    """R@1/5/10 both ways and median ranks of row-aligned image and caption vectors (groups: patent codes)."""
    t2i = ranks(text, image, groups, groups)
    i2t = ranks(image, text, groups, groups)
    n = image.shape[0]
    return {"pairs": int(n), "text_to_image": recall(t2i, RETRIEVAL_KS, n),
            "image_to_text": recall(i2t, RETRIEVAL_KS, n),
            "median_rank": {"text_to_image": float(np.median(t2i)) if n else None,
                            "image_to_text": float(np.median(i2t)) if n else None},
            "_ranks": (t2i, i2t)}


def retrieval_protocols(image: np.ndarray, text: np.ndarray, patents: Sequence[str], figs: Sequence[str | None],
                        views: Sequence[str | None], fallback: np.ndarray, seed: int = 0,
                        max_patents: int = HEADLINE_PATENTS) -> dict[str, Any]:
    """The three protocols on usable pairs (rows already filtered): designclip_5k, all_views, patent_level, curve."""
    codes = np.unique(np.asarray([str(p) for p in patents], dtype=str), return_inverse=True)[1].ravel()
    rows = headline_rows(patents, figs, views, ~fallback, max_patents, seed)
    head = scored(image[rows], text[rows]) if rows.size else {"pairs": 0, "skipped": "no usable headline view"}
    head.pop("_ranks", None)
    eligible_patents = len({patents[i] for i in np.flatnonzero(~fallback)})
    head.update({"protocol": PROTOCOLS["designclip_5k"], "patents": int(rows.size), "requested": int(max_patents),
                 "sampled": eligible_patents > max_patents, "seed": seed,
                 "left_out": {"metadata_fallback_caption": int(fallback.sum())} if fallback.any() else {}})
    everything = scored(image, text)
    t2i, i2t = everything.pop("_ranks")
    everything.update({"protocol": PROTOCOLS["all_views"], "patents": len(set(patents)),
                       "metadata_fallback_captions": int(fallback.sum())})
    patent = scored(image, text, codes)
    patent.pop("_ranks")
    patent.update({"protocol": PROTOCOLS["patent_level"], "patents": len(set(patents))})
    curve_ks = [k for k in CURVE_KS if k <= image.shape[0]] or [1]
    return {"designclip_5k": head, "all_views": everything, "patent_level": patent,
            "curve": {"ks": curve_ks, "text_to_image": list(recall(t2i, curve_ks, image.shape[0]).values()),
                      "image_to_text": list(recall(i2t, curve_ks, image.shape[0]).values())}}
