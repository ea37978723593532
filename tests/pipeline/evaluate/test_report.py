"""Report Markdown and comparison tables carry the numbers; plots are real PNGs."""

from __future__ import annotations

import io

import pytest
from designclip.pipeline.evaluate.report import comparison_markdown, confusion_pngs, pct, recall_png, report_markdown
from PIL import Image

from tests.fixtures.evaluate import hand_report


def test_report_markdown_has_the_numbers() -> None:
    report, _ = hand_report("ours")
    md = report_markdown(report, images=["recall.png"])
    assert md.startswith("# Evaluation of `ours` on release `v1`")
    # one view per patent (A: FIG. 1, B: FIG. 3): both found first; all views: R@1 50 / 25 %; patent level: all hits
    assert ("| DesignCLIP protocol (1 view / patent, <= 5k patents), every eligible patent | 2 | 2 | 100.00 | 100.00 "
            "| 100.00 | 100.00 | 100.00 | 100.00 |") in md
    assert "| all test views | 4 | 2 | 50.00 | 100.00 | 100.00 | 25.00 | 100.00 | 100.00 |" in md
    assert "| all views, patent level | 4 | 2 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 |" in md
    assert "counts as a miss" in md and "any view of the query's patent is a hit" in md  # the rules are stated
    assert "| prompted | US design classes (33) | 80.00 | 5 | left out: 1 unknown_class |" in md
    assert ("| linear probe (fit on val) | US design classes (33) | 80.00 | 5 | left out: 1 unknown_class; fit on 20 "
            "val views") in md
    row = report["classification"]["us"]["per_class"][2]
    assert f"| D3 | {row['title']} | 2 | 50.00 | {pct(row['designclip_probe'])} | 50.00 | – |" in md
    assert "Locarno codes not in the title list (left out): 99 (1)" in md
    dp = report["deeppatent"]["views_per_query"]["1"]
    assert f"| 1 | {dp['queries']} | {dp['database']} | {100 * dp['mAP']:.2f} | {100 * dp['mAP_pml']:.2f} |" in md
    assert f"mAP official {100 * dp['mAP']:.2f}, mAP pml {100 * dp['mAP_pml']:.2f}" in md
    assert "![recall.png](recall.png)" in md


def test_comparison_puts_models_side_by_side_and_bolds_the_best() -> None:
    ours, _ = hand_report("ours")
    base, _ = hand_report("clip", shuffle=True)
    ours["model"]["role"], base["model"]["role"] = "ours", "baseline"
    md = comparison_markdown([ours, base])
    assert "| ours (ours) | **100.00** | **100.00** | **100.00** | **100.00** |" in md  # DesignCLIP protocol
    assert "| ours (ours) | **50.00** | **100.00** | **100.00** | **25.00** |" in md  # all views
    assert "| DesignCLIP ViT-B (published, other split) | – | 29.75 | 39.91 | – | – | – |" in md
    assert "| DesignCLIP ViT-B (published, other split) | – | 41.34 | – |" in md  # US DesignCLIP probe column
    base_row = next(line for line in md.splitlines() if line.startswith("| clip (baseline) |") and "R@" not in line)
    assert "**" not in base_row.split("|")[2]  # its T->I R@1 is lower: not bold
    cls_rows = [line for line in md.splitlines() if line.startswith("| ours (ours) | **80.00**")]
    assert cls_rows  # equal classification numbers: both bold
    assert md.count("| clip (baseline) | **80.00**") == 1


@pytest.mark.parametrize("which", ["recall-one", "recall-two", "confusion"])
def test_plots_are_png_files(which: str) -> None:
    ours, _ = hand_report("ours")
    base, _ = hand_report("clip", shuffle=True)
    pngs = {"recall-one": [recall_png([ours], "one")], "recall-two": [recall_png([ours, base], "two")],
            "confusion": list(confusion_pngs(ours).values())}[which]
    assert pngs
    for png in pngs:
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 200
    if which == "confusion":
        assert set(confusion_pngs(ours)) == {"confusion_us.png", "confusion_locarno.png"}
