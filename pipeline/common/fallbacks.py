"""Which whole-sheet fallbacks are not one FIG.: the rule release and the DeepPatent per-FIG. variant both apply.

When segmentation cannot cut a sheet, render keeps the whole sheet as one view (`segmentation == "fallback"`). On a
sheet that gives other samples of the patent too, or whose labels name other FIG.s, that view shows several FIG.s:
a per-FIG. dataset or benchmark leaves it out (and counts it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

SHOWS_OTHER_LABELS = "the sheet shows other FIG. labels"
"""Render's flag on a view whose sheet carries other FIG.s' labels."""
MULTI_FIG_FALLBACK = "whole-sheet fallback of a sheet with several FIG.s"


class ViewRow(Protocol):
    """What the rule reads of a view (a shard index row: release's PlannedView, or the index's own columns)."""

    key: str
    patent_id: str
    sheet: int | None
    segmentation: str | None
    flag: str


def multi_fig_fallbacks(views: Iterable[ViewRow]) -> set[str]:
    """Keys of whole-sheet fallbacks of sheets holding several FIG.s: the sheet gives other samples of the patent
    (the same picture twice or more), or it shows other FIG.s' labels."""
    views = list(views)
    per_sheet = Counter((v.patent_id, v.sheet) for v in views)
    return {v.key for v in views if v.segmentation == "fallback"
            and (per_sheet[(v.patent_id, v.sheet)] > 1 or SHOWS_OTHER_LABELS in (v.flag or ""))}
