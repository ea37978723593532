"""Whole-sheet fallbacks that show several FIG.s are found from index rows alone (release and DeepPatent views)."""

from __future__ import annotations

from designclip.pipeline.common.fallbacks import SHOWS_OTHER_LABELS, multi_fig_fallbacks
from designclip.pipeline.release.plan import PlannedView


def view(key: str, sheet: int, segmentation: str, flag: str = "") -> PlannedView:
    return PlannedView(key, key.split("_")[0], sheet, segmentation, "", 2021, "", flag)


def test_fallbacks_of_sheets_with_several_figs_are_found_and_single_ones_kept():
    views = [
        view("P1_f1", 1, "sheet"),
        view("P1_f2", 2, "fallback", "regions could not be separated; whole sheet used"),
        view("P1_f3", 2, "fallback", "regions could not be separated; whole sheet used"),
        view("P1_f4", 3, "fallback", "FIG. label not read; placed by FIG. order"),  # alone on its sheet: kept
        view("P1_f5", 4, "fallback", f"FIG. label not read; placed by FIG. order; {SHOWS_OTHER_LABELS}"),
        view("P1_f6", 5, "xycut"),
    ]
    assert multi_fig_fallbacks(views) == {"P1_f2", "P1_f3", "P1_f5"}
