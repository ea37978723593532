"""FIG. segmentation against the hand-checked ground truth of real multi-FIG. patents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.render import RenderOptions, render_patent
from pipeline.segment_eval import SegmentationScore, score_patent
from tests.pipeline.test_render import fixture_input

TRUTH = json.loads((Path(__file__).resolve().parents[1] / "data" / "segmentation_truth.json").read_text())["patents"]


def folder_of(prefix: str) -> str:
    return next(name for name in TRUTH if name.startswith(prefix))


@pytest.mark.parametrize("prefix", ["USD0909824", "USD0913175", "USD0919623", "USD0907293"])
def test_every_fig_of_a_multi_fig_patent_gets_its_own_region(prefix):
    score = SegmentationScore()
    views = render_patent(fixture_input(prefix), RenderOptions(size=64))
    score_patent(score, folder_of(prefix), TRUTH[folder_of(prefix)], [s.meta for s in views.samples])
    assert score.wrong == []
    assert score.figs == score.figs_right == TRUTH[folder_of(prefix)]["number_of_figures"]


def test_overlapping_drawings_fall_back_to_the_whole_sheet_flagged_never_mislabelled():
    views = render_patent(fixture_input("USD0930095"), RenderOptions(size=64))  # putters whose shafts interleave
    by_fig = {s.meta["fig"]: s.meta for s in views.samples}
    assert len(views.samples) == 16
    for fig, sheet in (("7", 7), ("8", 7), ("15", 14), ("16", 14)):
        assert by_fig[fig]["sheet"] == sheet and by_fig[fig]["flagged"] and by_fig[fig]["segmentation"] == "fallback"
    assert sum(m["flagged"] for m in by_fig.values()) == 4


def test_scoring_counts_a_wrong_sheet_as_wrong():
    truth = {"number_of_figures": 2, "sheets": {"D00001": [{"fig": "1", "box": [0, 0, 10, 10]}],
                                               "D00002": [{"fig": "2", "box": [0, 0, 10, 10]}]}}
    metas = [{"fig": "1", "sheet": 1, "segmentation": "sheet", "drawing_box": [0, 0, 10, 10]},
             {"fig": "2", "sheet": 1, "segmentation": "sheet", "drawing_box": [0, 0, 10, 10]}]
    score = SegmentationScore()
    score_patent(score, "P", truth, metas)
    assert (score.figs_right, score.figs, score.patents_count_right) == (1, 2, 1)
