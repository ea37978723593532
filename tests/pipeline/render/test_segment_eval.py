"""The segmentation yardstick: hand-made boxes scored as a person would, and the DeepPatent2 truth file checked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.render.segment_eval import (
    Tally,
    TrueFig,
    View,
    as_stored,
    fixture_truth,
    score_views,
    sheet_number,
    sheet_truth,
    views_from_metas,
)
from designclip.pipeline.render.sheet_image import decode_sheet, ink_box

DATA = Path(__file__).resolve().parents[2] / "data"
SHEETS = DATA / "deeppatent2-sheets"
DP2 = json.loads((DATA / "segmentation_truth_deeppatent2.json").read_text())["sheets"]
FIXTURES = json.loads((DATA / "segmentation_truth.json").read_text())["patents"]

# Two FIG.s side by side on sheet 3, one alone on sheet 4.
TRUTH = [TrueFig("4", 3, (100, 100, 500, 900), (250, 950, 350, 990)), TrueFig("5", 3, (600, 100, 1000, 900)),
         TrueFig("6", 4, (100, 100, 1000, 900))]


def score(*views: View) -> Tally:
    tally = Tally()
    score_views(tally, "P", TRUTH, views)
    return tally


def test_a_crop_holding_its_fig_and_no_other_is_right():
    tally = score(View("4", 3, (80, 80, 520, 920), False, (240, 940, 360, 995)),
                  View("5", 3, (590, 90, 1010, 910), False), View("6", 4, (90, 90, 1010, 910), False))
    assert (tally.right, tally.figs, tally.views, tally.flagged) == (3, 3, 3, 0)
    assert tally.unflagged_wrong == tally.two_figs == tally.missing == tally.wrong == []
    assert (tally.labels_found, tally.labels) == (1, 1)


def test_a_view_on_the_wrong_sheet_is_wrong_and_listed_when_unflagged():
    tally = score(View("4", 4, (80, 80, 520, 920), False), View("5", 3, (590, 90, 1010, 910), False),
                  View("6", 4, (90, 90, 1010, 910), False))
    assert (tally.right, tally.figs) == (2, 3)
    assert tally.unflagged_wrong == ["P FIG. 4 (sheet 4, ?): on sheet 4, true sheet 3"]
    assert (tally.labels_found, tally.labels) == (0, 1)  # no label box predicted
    assert tally.labels_missed == ["P FIG. 4: true [250, 950, 350, 990], ours none"]


def test_a_crop_holding_two_figs_is_wrong_and_counted_as_a_two_fig_view():
    # FIG. 4's crop reaches 30 % into FIG. 5; FIG. 5's crop is too small (covers 75 % of it).
    tally = score(View("4", 3, (80, 80, 720, 920), False), View("5", 3, (700, 100, 1000, 900), False),
                  View("6", 4, (90, 90, 1010, 910), False))
    assert tally.right == 1
    assert tally.unflagged_wrong == ["P FIG. 4 (sheet 3, ?): crop also covers 30% of FIG. 5",
                                     "P FIG. 5 (sheet 3, ?): crop covers 75% of the FIG."]
    assert tally.two_figs == []  # 30 % of FIG. 5 is not "showing" it (needs >= 50 %)
    wide = score(View("4", 3, (80, 80, 900, 920), False))
    assert wide.two_figs == ["P FIG. 4 (sheet 3, ?): shows FIG.s 4, 5"]
    assert wide.missing == ["P FIG. 5", "P FIG. 6"]


def test_a_flagged_whole_sheet_fallback_is_wrong_but_not_an_unflagged_wrong_view():
    sheet = (0, 0, 1100, 1000)
    tally = score(View("4", 3, sheet, True, method="fallback"), View("5", 3, sheet, True, method="fallback"),
                  View("6", 4, sheet, False, method="sheet"))
    assert (tally.right, tally.flagged, len(tally.two_figs)) == (1, 2, 2)
    assert tally.unflagged_wrong == []
    assert tally.wrong[0] == "P FIG. 4 (fallback, flagged): crop also covers 100% of FIG. 5"


def test_overlapping_true_boxes_judge_a_crop_only_on_what_it_adds():
    # Interleaved drawings: FIG. 8's true box overlaps FIG. 7's; the best possible crop of FIG. 7 is right.
    truth = [TrueFig("7", 7, (100, 100, 600, 1000)), TrueFig("8", 7, (450, 100, 1000, 1000))]
    tally = Tally()
    views = [View("7", 7, (100, 100, 600, 1000), False), View("8", 7, (450, 100, 1000, 1000), False)]
    score_views(tally, "P", truth, views)
    assert tally.right == 2 and tally.unflagged_wrong == []


def test_views_from_rendered_sample_json_read_empty_values_as_none():
    meta = {"fig": "", "sheet": 2, "crop_box": [1, 2, 3, 4], "flagged": True, "label_box": [],
            "segmentation": "fallback"}
    assert views_from_metas([meta]) == [View(None, 2, (1, 2, 3, 4), True, None, "fallback")]
    tally = Tally()
    score_views(tally, "P", [TrueFig("1", 2, (0, 0, 4, 4))], views_from_metas([{**meta, "flagged": False}]))
    assert tally.unflagged_wrong == ["P FIG. - (sheet 2, fallback): a view without a FIG."]


def test_a_bad_sheet_name_says_what_is_expected():
    assert sheet_number("USD0871717-20200107-D00003") == 3
    with pytest.raises(ValueError, match="not a sheet name like"):
        sheet_number("USD0871717.png")


def test_the_deeppatent2_copy_is_byte_for_byte_the_source():
    sums = dict(line.split("  ")[::-1] for line in (SHEETS / "SHA256SUMS").read_text().splitlines())
    assert len(sums) == 30 and sorted(p.name for p in SHEETS.glob("*.png")) == sorted(n for n in sums if "/" not in n)
    for name, digest in sums.items():
        assert hashlib.sha256((SHEETS / name).read_bytes()).hexdigest() == digest, name


def test_deeppatent2_truth_is_whole_and_split_into_tune_and_holdout():
    assert len(DP2) == 15 and sum(len(s["figs"]) for s in DP2.values()) == 35
    parts = {s["part"] for s in DP2.values()}
    assert parts == {"tune", "holdout"} and 6 <= sum(s["part"] == "holdout" for s in DP2.values()) <= 9
    for name, s in DP2.items():
        patent_parts = {t["part"] for n, t in DP2.items() if n[:10] == name[:10]}
        assert len(patent_parts) == 1, f"{name}: a patent's sheets must stay in one part"
        w, h = s["size"]
        for f in s["figs"]:
            for box in (f["box"], f["label_box"]):
                assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, (name, f["fig"])
    fixture_parts = [e["part"] for e in FIXTURES.values()]
    assert fixture_parts.count("holdout") == 10
    assert sum(e["part"] == "holdout" and e["number_of_figures"] > len(e["sheets"]) for e in FIXTURES.values()) >= 3


def test_hand_checked_boxes_of_a_turned_four_fig_sheet_hold_their_ink():
    name = "USD0871717-20200107-D00003"  # landscape, stored turned: two sheet-wide strips and two short ones
    entry = DP2[name]
    assert (entry["part"], entry["orientation"], entry["stored_size"], entry["size"]) == (
        "tune", "landscape", [1545, 2448], [2448, 1545])
    gray = decode_sheet((SHEETS / f"{name}.png").read_bytes(), "landscape")
    ink = np.asarray(gray) < 128
    figs = {f["fig"]: f for f in entry["figs"]}
    assert list(figs) == ["4", "5", "6", "7"] and figs["7"]["label_text"] == "FIG. 7"
    assert figs["4"]["box"] == [21, 20, 2428, 71] and figs["6"]["box"][0] < figs["7"]["box"][0]
    boxes = [f["box"] for f in figs.values()] + [f["label_box"] for f in figs.values()]
    inside = np.zeros_like(ink)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert int(ink[~inside].sum()) == 0  # every ink pixel of the sheet belongs to a drawing or a label
    for f in figs.values():
        x0, y0, x1, y1 = f["label_box"]
        assert ink[y0:y1, x0:x1].any() and x1 - x0 > 3 * (y1 - y0)  # upright: the label runs left to right


def test_as_stored_maps_the_truth_back_onto_the_unturned_png():
    name = "USD0871717-20200107-D00002"
    data = (SHEETS / f"{name}.png").read_bytes()
    upright, stored = DP2[name], as_stored(DP2[name])
    assert stored["size"] == [1713, 2450] and {f["label_rotation"] for f in stored["figs"]} == {90}
    turned = np.asarray(decode_sheet(data, "landscape")) < 128
    plain = np.asarray(decode_sheet(data, None)) < 128
    for a, b in zip(upright["figs"], stored["figs"], strict=True):
        for key in ("box", "label_box"):
            (ux0, uy0, ux1, uy1), (sx0, sy0, sx1, sy1) = a[key], b[key]
            assert turned[uy0:uy1, ux0:ux1].sum() == plain[sy0:sy1, sx0:sx1].sum() > 0
        x0, y0, x1, y1 = b["label_box"]
        assert y1 - y0 > 3 * (x1 - x0)  # stored, the label reads bottom-to-top


def test_a_whole_sheet_view_of_a_real_two_fig_sheet_shows_two_figs():
    name = "USD0871727-20200107-D00004"  # FIG. 6 above FIG. 7
    gray = decode_sheet((SHEETS / f"{name}.png").read_bytes(), DP2[name]["orientation"])
    whole = ink_box(gray)
    tally = Tally()
    score_views(tally, name, sheet_truth(name, DP2[name]), [View("6", 4, whole, True), View("7", 4, whole, True)])
    assert (tally.right, tally.figs, len(tally.two_figs), tally.unflagged_wrong) == (0, 2, 2, [])


def test_fixture_truth_reads_sheets_and_boxes():
    truth = fixture_truth(FIXTURES["USD0909824-20210209"])
    assert [(t.fig, t.sheet) for t in truth] == [("1", 1), ("2", 2), ("3", 2), ("4", 3), ("5", 3), ("6", 3), ("7", 3)]


def test_fixture_label_boxes_hold_a_label_for_every_labelled_fig():
    labelled = [(p, f) for p, e in FIXTURES.items() for figs in e["sheets"].values() for f in figs if "label_box" in f]
    assert len(labelled) == 260  # 262 FIG.s; USD0910059 and USD0937859 print no label ('The FIGURE is ...')
    assert {p[:10] for p, e in FIXTURES.items() for figs in e["sheets"].values() for f in figs
            if "label_box" not in f} == {"USD0910059", "USD0937859"}
    by_fig = {t.fig: t for t in fixture_truth(FIXTURES["USD0909824-20210209"])}
    # Sheet 3: 'FIG. 4' and 'FIG. 5' side by side under the top drawings, 'FIG. 7' lowest.
    assert by_fig["4"].label_box[2] < by_fig["5"].label_box[0] and by_fig["7"].label_box[1] > by_fig["6"].label_box[3]
