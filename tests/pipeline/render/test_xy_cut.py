"""XY-cut between labels on drawn layouts: labels under, over and beside their drawings, grids, and no way to cut."""

from __future__ import annotations

import numpy as np
from designclip.pipeline.common.fallbacks import SHOWS_OTHER_LABELS
from designclip.pipeline.render.fig_labels import FigLabel
from designclip.pipeline.render.placement import plan_regions
from designclip.pipeline.render.segment import SheetLayout, nearest_label_split, split_sheet
from designclip.pipeline.render.xy_cut import xy_cut

SCALE = 4


def canvas(w: int = 2000, h: int = 2400) -> np.ndarray:
    return np.zeros((h // SCALE, w // SCALE), np.uint8)


def draw(ink: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """A drawing: the outline of `box` (full-resolution pixels) in 1/SCALE ink."""
    x0, y0, x1, y1 = (v // SCALE for v in box)
    ink[y0:y1, x0] = ink[y0:y1, x1 - 1] = 1
    ink[y0, x0:x1] = ink[y1 - 1, x0:x1] = 1


def test_labels_under_stacked_drawings_take_the_drawing_above_them():
    ink = canvas()
    draw(ink, (200, 100, 1800, 900))
    draw(ink, (200, 1300, 1800, 2100))
    labels = [(900, 950, 1100, 1000), (900, 2150, 1100, 2200)]  # "FIG. 1" under drawing 1, "FIG. 2" under 2
    assert xy_cut(ink, labels, SCALE) == [(200, 100, 1800, 900), (200, 1300, 1800, 2100)]


def test_labels_over_their_drawings_and_beside_them():
    ink = canvas()
    draw(ink, (200, 200, 1800, 1000))
    draw(ink, (200, 1400, 1800, 2200))
    over = [(900, 100, 1100, 150), (900, 1300, 1100, 1350)]
    assert xy_cut(ink, over, SCALE) == [(200, 200, 1800, 1000), (200, 1400, 1800, 2200)]
    ink = canvas()
    draw(ink, (400, 200, 1800, 1000))
    draw(ink, (400, 1400, 1800, 2200))
    beside = [(100, 500, 150, 700), (100, 1700, 150, 1900)]  # turned labels left of each drawing
    assert xy_cut(ink, beside, SCALE) == [(400, 200, 1800, 1000), (400, 1400, 1800, 2200)]


def test_a_grid_of_four_is_cut_into_four():
    ink = canvas()
    boxes = [(100, 100, 900, 900), (1100, 100, 1900, 900), (100, 1200, 900, 2000), (1100, 1200, 1900, 2000)]
    for box in boxes:
        draw(ink, box)
    labels = [(400, 950, 600, 1000), (1400, 950, 1600, 1000), (400, 2050, 600, 2100), (1400, 2050, 1600, 2100)]
    assert xy_cut(ink, labels, SCALE) == boxes


def test_interlocked_drawings_cannot_be_cut():
    ink = canvas()
    draw(ink, (100, 100, 1200, 1200))
    draw(ink, (800, 800, 1900, 1900))  # overlapping extents: no whitespace line between them
    assert xy_cut(ink, [(400, 1250, 600, 1300), (1300, 1950, 1500, 2000)], SCALE) is None


def label(fig: str, box: tuple[int, int, int, int]) -> FigLabel:
    return FigLabel(fig, box, f"FIG. {fig}", 0.99, 0, (box,))


def test_a_label_of_a_fig_missing_from_the_list_still_gets_its_own_region():
    ink = canvas()
    for box in ((200, 100, 1800, 600), (200, 900, 1800, 1400), (200, 1700, 1800, 2200)):
        draw(ink, box)
    layout = SheetLayout(1, (2000, 2400), labels=[label("1", (900, 650, 1100, 700)),
                                                   label("2", (900, 1450, 1100, 1500))],
                         strays=[label("9", (900, 2250, 1100, 2300))], ink=ink)
    split = split_sheet(layout, ["1", "2"])
    assert split.method == "xycut" and split.boxes == {"1": (200, 100, 1800, 600), "2": (200, 900, 1800, 1400)}


def test_a_sheet_that_cannot_be_separated_is_flagged_and_kept_whole():
    ink = canvas()
    draw(ink, (100, 100, 1200, 1200))
    draw(ink, (800, 800, 1900, 1900))
    layout = SheetLayout(2, (2000, 2400), labels=[label("2", (100, 1250, 300, 1300)),
                                                   label("3", (1300, 1950, 1500, 2000))], ink=ink)
    first = SheetLayout(1, (2000, 2400), labels=[label("1", (100, 1250, 300, 1300))], ink=canvas())
    regions = plan_regions(["1", "2", "3"], [1, 2], {1: first, 2: layout}.__getitem__)
    assert [(r.fig, r.sheet, r.method, r.box) for r in regions] == [
        ("1", 1, "sheet", None), ("2", 2, "fallback", None), ("3", 2, "fallback", None)]
    assert all(r.flag and "could not be separated" in r.flag for r in regions[1:]) and regions[0].flag is None


def test_drawings_whose_boxes_overlap_are_kept_apart_by_hiding_the_other_ink():
    """Like the golf-club sheets of USD0930095: one drawing's shaft reaches past the other's head."""
    ink = canvas()
    draw(ink, (100, 200, 900, 900))
    draw(ink, (900, 200, 1100, 260))  # arm to the shaft
    draw(ink, (1100, 200, 1160, 1400))  # the shaft, reaching down beside drawing 2
    draw(ink, (100, 1100, 900, 1900))
    layout = SheetLayout(1, (2000, 2400), labels=[label("1", (400, 100, 600, 150)),
                                                   label("2", (400, 1950, 600, 2000))], ink=ink)
    split = split_sheet(layout, ["1", "2"])
    assert split.method == "masked" and split.flag is None
    assert split.boxes == {"1": (100, 200, 1160, 1400), "2": (100, 1100, 900, 1900)}
    # Drawing 2's view hides the shaft; drawing 1's hides drawing 2.
    assert split.hide["2"][1300 // SCALE, 1100 // SCALE] == 1 and split.hide["2"][1500 // SCALE, 100 // SCALE] == 0
    assert split.hide["1"][1500 // SCALE, 100 // SCALE] == 1 and split.hide["1"][1300 // SCALE, 1100 // SCALE] == 0


def test_a_label_nearer_the_next_drawing_is_matched_one_to_one():
    ink = canvas()
    draw(ink, (100, 100, 1900, 900))
    draw(ink, (100, 1300, 1900, 2100))
    labels = [(900, 1220, 1100, 1270), (900, 2150, 1100, 2200)]  # "FIG. 1" sits just over drawing 2
    split = nearest_label_split(ink, labels, SCALE)
    assert split is not None and split.matched and not split.ambiguous
    assert split.boxes == [(100, 100, 1900, 900), (100, 1300, 1900, 2100)]


def test_equal_counts_give_way_to_labels_when_a_sheet_shows_two():
    """3 FIG.s on 3 sheets would mean one a sheet, but sheet 1 reads FIG. 1 and FIG. 2: the labels decide."""
    ink = canvas()
    draw(ink, (200, 100, 1800, 900))
    draw(ink, (200, 1300, 1800, 2100))
    two = SheetLayout(1, (2000, 2400), labels=[label("1", (900, 950, 1100, 1000)),
                                                label("2", (900, 2150, 1100, 2200))], ink=ink)
    three = SheetLayout(2, (2000, 2400), labels=[label("3", (900, 950, 1100, 1000))], ink=canvas())
    unlabelled = SheetLayout(3, (2000, 2400), ink=canvas())
    regions = plan_regions(["1", "2", "3"], [1, 2, 3], {1: two, 2: three, 3: unlabelled}.__getitem__)
    assert [(r.fig, r.sheet, r.method) for r in regions] == [
        ("1", 1, "xycut"), ("2", 1, "xycut"), ("3", 2, "sheet"), (None, 3, "fallback")]
    assert regions[-1].flag == "no FIG. label read on this sheet"


def test_a_label_read_on_two_sheets_places_nothing_and_still_cuts_its_drawing_away():
    """Sheet 1 holds FIG. 1 and FIG. 2, but FIG. 2 was misread as "3", the label of sheet 2's only drawing."""
    ink = canvas()
    draw(ink, (200, 100, 1800, 900))
    draw(ink, (200, 1300, 1800, 2100))
    first = SheetLayout(1, (2000, 2400), labels=[label("1", (900, 950, 1100, 1000)),
                                                  label("3", (900, 2150, 1100, 2200))], ink=ink)
    second_ink = canvas()
    draw(second_ink, (200, 100, 1800, 2100))
    second = SheetLayout(2, (2000, 2400), labels=[label("3", (900, 2150, 1100, 2200))], ink=second_ink)
    regions = plan_regions(["1", "2", "3"], [1, 2], {1: first, 2: second}.__getitem__)
    by_fig = {r.fig: r for r in regions}
    # FIG. 1 keeps to its own drawing: the misread label's drawing is cut away, not shown beside it.
    assert (by_fig["1"].sheet, by_fig["1"].method, by_fig["1"].box, by_fig["1"].flag) == (
        1, "xycut", (200, 100, 1800, 900), None)
    # FIG. 2 and 3 could not be placed by their labels: whole sheet, flagged, never unflagged on a guess.
    assert all(by_fig[f].method == "fallback" and by_fig[f].flag for f in ("2", "3"))


def test_a_fig_placed_by_order_on_a_sheet_showing_other_labels_is_marked_as_several_figs():
    layouts = {1: SheetLayout(1, (2000, 2400), labels=[label("1", (900, 950, 1100, 1000))], ink=canvas()),
               2: SheetLayout(2, (2000, 2400), labels=[label("3", (900, 950, 1100, 1000))], ink=canvas()),
               3: SheetLayout(3, (2000, 2400), labels=[label("3", (900, 950, 1100, 1000))], ink=canvas()),
               4: SheetLayout(4, (2000, 2400), ink=canvas())}
    by_fig = {r.fig: r for r in plan_regions(["1", "2", "3"], [1, 2, 3, 4], layouts.__getitem__)}
    assert (by_fig["2"].sheet, by_fig["2"].method) == (2, "fallback")
    assert SHOWS_OTHER_LABELS in by_fig["2"].flag and by_fig["1"].flag is None
