"""Report Markdown and comparison tables carry the numbers; plots are real PNGs; the report folder is written with
report.json last, survives a crash without a stale marker, and is found again by its inputs fingerprint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.evaluate.evaluation import evaluate_vectors
from designclip.pipeline.evaluate.report import comparison_markdown, confusion_pngs, pct, recall_png, report_markdown
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.reports import (
    fingerprint,
    finished_report,
    read_dira_result,
    read_report,
    read_report_file,
    write_comparison,
    write_report,
)
from PIL import Image

from tests.evaluate.test_evaluate import LOCARNO, class_case, make_split


def hand_report(tag: str, shuffle: bool = False) -> tuple[dict, dict]:
    """The hand-computed retrieval case of test_evaluate (R@1 50 / 25 %) plus the class case, as one report."""
    e = np.eye(4)
    image = np.stack([e[0], e[1], e[2], e[3]])
    text = np.stack([e[0], e[0], e[2] + 0.5 * e[3], e[2] + 0.1 * e[3]])
    if shuffle:
        text = text[[2, 3, 0, 1]]  # R@1 0 % both ways
    retrieval = evaluate_vectors(make_split(image, text, patents=["A", "A", "B", "B"]), None, {}, LOCARNO)
    test, val, us_prompts, loc_prompts = class_case()
    report = evaluate_vectors(test, val, {"prompted": (us_prompts, loc_prompts)}, LOCARNO)
    report["retrieval"] = retrieval["retrieval"]
    arrays = report.pop("arrays")
    report.update({"model": {"tag": tag, "spec": {"model": tag}, "init": "test", "dim": 4},
                   "release": {"version": "v1"}})
    return json.loads(json.dumps(report)), arrays


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


class Recorder(DataFolder):
    """A DataFolder that remembers the order files were completed in (and can fail one write)."""

    def __init__(self, root: Path, fail_on: str | None = None) -> None:
        super().__init__(root)
        self.order: list[str] = []
        self.fail_on = fail_on

    def atomic_open(self, rel: str, mode: str = "wb"):  # type: ignore[override]
        if self.fail_on and rel.endswith(self.fail_on):
            raise OSError(f"disk full writing {rel}")
        self.order.append(rel.rsplit("/", 1)[-1])
        return super().atomic_open(rel, mode)


def test_report_folder_json_last_crash_safe_and_fingerprinted(tmp_path: Path) -> None:
    report, arrays = hand_report("ours")
    report["inputs"] = {"settings": {"seed": 0}, "fingerprint": fingerprint({"settings": {"seed": 0}})}
    files = {"report.md": report_markdown(report).encode(), "recall.png": recall_png([report]),
             **confusion_pngs(report)}
    folder = Recorder(tmp_path)
    written = write_report(folder, "v1", "ours", report, files, arrays)
    assert folder.order[-1] == "report.json" and folder.order.count("report.json") == 1
    assert set(written) == {*files, "dira_result.npy", "dira_keys.json", "report.json"}
    stored = read_report(folder, "v1", "ours")
    assert stored["files"] == sorted([*files, "dira_result.npy", "dira_keys.json"])
    top = read_dira_result(folder, "v1", "ours")
    assert top.dtype == np.int64 and top.shape == (arrays["dira_topk"].shape[0], 10)
    keys = json.loads(read_report_file(folder, "v1", "ours", "dira_keys.json"))
    assert keys == {"queries": arrays["dira_query_keys"], "database": arrays["dira_db_keys"]}
    assert finished_report(folder, "v1", "ours", report["inputs"]["fingerprint"]) == stored
    assert finished_report(folder, "v1", "ours", fingerprint({"settings": {"seed": 1}})) is None

    # a rewrite without the Locarno plot removes the old one; a crash midway leaves no done marker behind
    smaller = {k: v for k, v in files.items() if k != "confusion_locarno.png"}
    write_report(DataFolder(tmp_path), "v1", "ours", report, smaller, arrays)
    assert not (tmp_path / layout.report_file("v1", "ours", "confusion_locarno.png")).exists()
    with pytest.raises(OSError, match="disk full"):
        write_report(Recorder(tmp_path, fail_on="recall.png"), "v1", "ours", report, files, arrays)
    assert read_report(DataFolder(tmp_path), "v1", "ours") is None
    assert not [p for p in (tmp_path / layout.report_dir("v1", "ours")).iterdir() if p.name.endswith(".tmp")]


def test_comparison_files(tmp_path: Path) -> None:
    ours, _ = hand_report("ours")
    base, _ = hand_report("clip", shuffle=True)
    paths = write_comparison(DataFolder(tmp_path), "v1", "ours-vs-clip", comparison_markdown([ours, base]),
                             recall_png([ours, base]))
    assert Path(paths["markdown"]) == tmp_path / layout.comparison_report("v1", "ours-vs-clip")
    assert "| clip |" in Path(paths["markdown"]).read_text()
    assert Image.open(paths["plot"]).format == "PNG"
