"""FIG. segmentation against the hand-checked ground truth of real multi-FIG. patents."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.render.label_erase import erase_text
from designclip.pipeline.render.patent_views import RenderOptions, render_patent
from designclip.pipeline.render.segment import analyse_sheet
from designclip.pipeline.render.segment_eval import SegmentationScore, score_patent
from designclip.pipeline.render.sheet_image import decode_sheet
from designclip.pipeline.render.view_image import square_view
from PIL import Image

from tests.fixtures.render import fixture_input

TRUTH = json.loads((Path(__file__).resolve().parents[2] / "data" / "segmentation_truth.json").read_text())["patents"]


def folder_of(prefix: str) -> str:
    return next(name for name in TRUTH if name.startswith(prefix))


@pytest.mark.parametrize("prefix", ["USD0909824", "USD0913175", "USD0919623", "USD0907293"])
def test_every_fig_of_a_multi_fig_patent_gets_its_own_region(prefix):
    score = SegmentationScore()
    views = render_patent(fixture_input(prefix), RenderOptions(size=64))
    score_patent(score, folder_of(prefix), TRUTH[folder_of(prefix)], [s.meta for s in views.samples])
    assert score.wrong == []
    assert score.figs == score.figs_right == TRUTH[folder_of(prefix)]["number_of_figures"]


def test_interlocked_drawings_are_separated_by_hiding_the_other_ink():
    """USD0930095: two putters per sheet whose shafts reach past the other's head (no straight cut exists)."""
    item = fixture_input("USD0930095")
    sheets = {s["sheet"]: s for s in item.sheets}
    figs = [f["fig"] for f in item.figures]
    views = render_patent(item, RenderOptions(size=512))
    by_fig = {s.meta["fig"]: s for s in views.samples}
    assert len(views.samples) == 16 and not any(s.meta["flagged"] for s in views.samples)
    truth = TRUTH[folder_of("USD0930095")]["sheets"]
    for first, second, sheet in (("7", "8", 7), ("15", "16", 14)):
        boxes = {e["fig"]: e["box"] for e in truth[f"D{sheet:05d}"]}
        gray = decode_sheet(item.images[sheet], sheets[sheet]["orientation"])
        clean = erase_text(gray, analyse_sheet(gray, sheet, figs).erase_boxes())
        hidden = 0
        for fig, other in ((first, second), (second, first)):
            meta = by_fig[fig].meta
            assert meta["sheet"] == sheet and meta["segmentation"] == "masked"
            crop = meta["crop_box"]
            plain = np.asarray(square_view(clean, tuple(crop), 512)) < 128
            ours = np.asarray(Image.open(io.BytesIO(by_fig[fig].png))) < 128
            assert not (ours & ~plain).any()  # hiding only ever removes ink
            removed = np.argwhere(plain & ~ours)
            if len(removed) < 200:
                continue  # this crop does not reach over the other putter
            hidden += 1
            # Everything removed belongs to the other putter: map the removed pixels back onto the sheet.
            scale = 512 / max(crop[2] - crop[0], crop[3] - crop[1])
            left = (512 - round((crop[2] - crop[0]) * scale)) // 2
            top = (512 - round((crop[3] - crop[1]) * scale)) // 2
            xs = crop[0] + (removed[:, 1] - left) / scale
            ys = crop[1] + (removed[:, 0] - top) / scale
            x0, y0, x1, y1 = boxes[other]
            slack = 0.02 * max(x1 - x0, y1 - y0)
            inside = (xs >= x0 - slack) & (xs <= x1 + slack) & (ys >= y0 - slack) & (ys <= y1 + slack)
            assert inside.mean() > 0.99, (fig, inside.mean())
        assert hidden >= 1  # on each sheet at least one view's crop reaches over the other putter


def test_scoring_counts_a_wrong_sheet_as_wrong():
    truth = {"number_of_figures": 2, "sheets": {"D00001": [{"fig": "1", "box": [0, 0, 10, 10]}],
                                               "D00002": [{"fig": "2", "box": [0, 0, 10, 10]}]}}
    metas = [{"fig": "1", "sheet": 1, "segmentation": "sheet", "drawing_box": [0, 0, 10, 10]},
             {"fig": "2", "sheet": 1, "segmentation": "sheet", "drawing_box": [0, 0, 10, 10]}]
    score = SegmentationScore()
    score_patent(score, "P", truth, metas)
    assert (score.figs_right, score.figs, score.patents_count_right) == (1, 2, 1)
