"""Segmentation on synthetic multi-FIG. sheets made of real tune drawings: every FIG. right, none wrong unflagged."""

from __future__ import annotations

import random

import pytest
from designclip.pipeline.render.placement import plan_regions
from designclip.pipeline.render.segment import analyse_sheet
from designclip.pipeline.render.segment_eval import coverage
from designclip.pipeline.render.sheet_image import ink_box

from tests.fixtures.synthetic_sheets import compose, drawing_pool


@pytest.fixture(scope="module")
def pool():
    return drawing_pool()


@pytest.mark.parametrize("staggered", [False, True])
def test_composed_sheets_are_cut_into_their_figs(pool, staggered):
    rng = random.Random(7 if staggered else 3)
    sheets = [s for s in (compose(rng, pool, staggered) for _ in range(120)) if s is not None][:60]
    assert len(sheets) >= 50
    wrong = []
    for sheet in sheets:
        figs = [fig for fig, _ in sheet.truth]
        regions = {r.fig: r for r in plan_regions(figs, [1], lambda s, g=sheet.gray, f=figs: analyse_sheet(g, s, f))}
        for fig, box in sheet.truth:
            region = regions[fig]
            # Stricter than the benchmark's judge: the region itself (no crop margin) must hold 90 % of its drawing.
            crop = region.box or ink_box(sheet.gray)
            right = coverage(crop, box) >= 0.9 and all(coverage(crop, b) <= 0.1 for f, b in sheet.truth if f != fig)
            if not right:
                wrong.append((fig, sheet.settings, region.method, region.flag))
    assert wrong == []
