"""Evaluation report folders: report.json written last, a crash leaves no stale marker, found again by fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.evaluate.report import comparison_markdown, confusion_pngs, recall_png, report_markdown
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

from tests.fixtures.evaluate import hand_report


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
