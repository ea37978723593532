"""FIG. placement apart from region cutting: the linear placement matches the original rule, and a sheet's own guess
(other sheets taken as unread) is the patent's real placement on real multi-FIG. patents."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from designclip.pipeline.render.fig_labels import FigLabel
from designclip.pipeline.render.placement import SheetPlan, _place_unlabelled, place_figs, plan_regions
from designclip.pipeline.render.segment import SheetLayout, analyse_sheet
from designclip.pipeline.render.sheet_image import decode_sheet

from tests.fixtures.render import fixture_input


def reference_placement(figs: Sequence[str], found: dict[str, int], sheets: Sequence[int]) -> dict[str, int]:
    """The rule as first written (quadratic in FIG.s): the linear version must place every FIG. the same."""
    placed = dict(found)
    labelled_sheets = set(found.values())
    for i, fig in enumerate(figs):
        if fig in placed:
            continue
        before = max((sheets.index(placed[f]) for f in figs[:i] if f in placed), default=0)
        after = min((sheets.index(placed[f]) for f in figs[i + 1:] if f in found), default=len(sheets) - 1)
        candidates = [sheets[j] for j in range(before, max(before, after) + 1)]
        empty = [s for s in candidates if s not in labelled_sheets and s not in placed.values()]
        placed[fig] = empty[0] if empty else candidates[0]
    return placed


def test_linear_placement_matches_the_original_rule():
    rng = random.Random(16)
    for _ in range(3000):
        figs = [str(i) for i in range(1, rng.randint(1, 14))]
        sheets = list(range(1, rng.randint(2, 9)))
        found = {f: rng.choice(sheets) for f in figs if rng.random() < 0.5}
        assert _place_unlabelled(figs, found, sheets) == reference_placement(figs, found, sheets)


def label(fig: str, y: int) -> FigLabel:
    return FigLabel(fig, (100, y, 300, y + 60), f"FIG. {fig}", 0.9)


def test_a_label_read_on_two_sheets_places_by_order_and_a_lone_guess_differs():
    figs, sheets = ["1", "2", "3"], [1, 2]
    layouts = {1: SheetLayout(1, (2000, 2400), [label("1", 900), label("2", 2000)]),
               2: SheetLayout(2, (2000, 2400), [label("2", 900)])}
    plans = place_figs(figs, sheets, layouts)
    # FIG. 2 is read on both sheets, so it places nothing: it goes by FIG. order to the first sheet without a label.
    assert plans == {1: SheetPlan("placed", ("1",), ("1",)), 2: SheetPlan("placed", ("2", "3"), ())}
    alone = place_figs(figs, sheets, {1: layouts[1], 2: SheetLayout(2, (0, 0))})
    assert alone[1] == SheetPlan("placed", ("1", "2"), ("1", "2"))  # on its own, sheet 1 would keep FIG. 2
    assert alone[1] != plans[1]  # so the parent redraws that sheet


@pytest.mark.parametrize("prefix", ["USD0909824", "USD0911449"])
def test_each_sheets_own_guess_is_the_patents_placement(prefix):
    item = fixture_input(prefix)
    sheets = sorted(s["sheet"] for s in item.sheets if s["sheet"] != 0)[:12]
    figs = [f["fig"] for f in sorted(item.figures, key=lambda f: f["fig_index"])]
    rows = {s["sheet"]: s for s in item.sheets}
    layouts = {s: analyse_sheet(decode_sheet(item.images[s], rows[s].get("orientation")), s, figs) for s in sheets}
    truth = place_figs(figs, sheets, layouts)
    assert len(figs) > len(sheets) and any(len(p.figs) > 1 for p in truth.values())
    for s in sheets:
        alone = {o: layouts[s] if o == s else SheetLayout(o, (0, 0)) for o in sheets}
        assert place_figs(figs, sheets, alone)[s] == truth[s]
    regions = plan_regions(figs, sheets, layouts.__getitem__)
    assert sorted(r.fig for r in regions if r.fig) == sorted(f for p in truth.values() for f in p.figs)
