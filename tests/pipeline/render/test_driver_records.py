"""What the render driver records: an unreadable sheet once, a failed week once with its reason (cleared when it
finishes), a finished week's missing contact sheet made again, and only its own crash leftovers swept."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from designclip.pipeline.ingest.sample import ingest_sample_weeks
from designclip.pipeline.render.driver import RENDER, RenderStageOptions
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_week_table

WEEK = dt.date(2021, 8, 31)  # USD0929296: 2 sheets, FIG. 1 and 2, one per sheet; USD0929297
OTHER = dt.date(2021, 9, 7)
OPTIONS = RenderStageOptions(RenderOptions(size=128))
STAGE = layout.render_stage("px128")


@pytest.fixture
def week_root(tmp_path: Path) -> DataFolder:
    ingest_sample_weeks(tmp_path / "data", [WEEK], tmp_path)
    return DataFolder(tmp_path / "data")


def _break_sheet(folder: DataFolder, patent: str, sheet: int) -> None:
    """Overwrite one stored TIFF with junk of the same length (the images tar stays a valid tar)."""
    row = next(r for r in read_week_table(folder, "sheets", WEEK).to_pylist()
               if r["patent_id"] == patent and r["sheet"] == sheet)
    with open(folder.path(row["image_path"]), "r+b") as f:
        f.seek(row["image_offset"])
        f.write(b"not a tiff " * (row["image_size"] // 11) + b"x" * (row["image_size"] % 11))


def test_an_unreadable_sheet_is_one_failure_naming_the_figs_it_held(week_root: DataFolder) -> None:
    _break_sheet(week_root, "USD0929296", 2)
    stats = RENDER.run(week_root, WEEK, OPTIONS).stats
    assert stats["failures"] == 1 and stats["failures_by_reason"] == {"sheet_unreadable": 1}
    shard = week_root.read_json(layout.shard_stats("px128", WEEK, 0))
    [failure] = shard["failure_details"]
    assert (failure["patent_id"], failure["sheet"], failure["reason"]) == ("USD0929296", 2, "sheet_unreadable")
    assert "D00002" in failure["detail"] and "FIG. 2 not drawn" in failure["detail"]


def test_a_failed_week_is_recorded_once_with_its_reason_and_cleared_when_it_finishes(week_root: DataFolder) -> None:
    images = Path(week_root.path(layout.images_file(WEEK)))
    kept = images.rename(images.with_suffix(".away"))
    for _ in range(2):  # a retry replaces the record: still one
        with pytest.raises(FileNotFoundError):
            RENDER.run(week_root, WEEK, OPTIONS)
    records = week_root.find(f"_failures/{STAGE}")
    assert records == [layout.failure_record(STAGE, WEEK)]
    record = week_root.read_json(records[0])
    assert record["week"] == WEEK.isoformat() and record["stage"] == "render"
    assert record["error"].startswith("FileNotFoundError") and "I20210831.tar" in record["error"]
    kept.rename(images)
    assert not RENDER.run(week_root, WEEK, OPTIONS).skipped
    assert not week_root.exists(layout.failure_record(STAGE, WEEK))


def test_a_finished_weeks_missing_preview_is_made_again(week_root: DataFolder) -> None:
    first = RENDER.run(week_root, WEEK, OPTIONS)
    preview = Path(week_root.path(layout.preview_file("px128", WEEK)))
    original = preview.read_bytes()
    preview.unlink()  # lost (a kill before the fix wrote the marker first, or deleted by hand)
    again = RENDER.run(week_root, WEEK, OPTIONS)
    assert again.skipped and again.stats == first.stats
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and preview.stat().st_size > len(original) // 2


def test_a_rerun_sweeps_its_own_crash_leftovers_and_no_other_weeks(week_root: DataFolder, tmp_path: Path) -> None:
    previews = Path(week_root.makedirs("previews/px128"))
    mine = previews / ".I20210831.png.0badc0de.tmp"
    theirs = previews / ".I20210907.png.1234abcd.tmp"  # another week being rendered right now
    marker_tmp = Path(week_root.makedirs(f"_stats/{STAGE}")) / ".I20210831.json.deadbeef.tmp"
    for p in (mine, theirs, marker_tmp):
        p.write_bytes(b"half-written")
    RENDER.run(week_root, WEEK, OPTIONS)
    assert not mine.exists() and not marker_tmp.exists() and theirs.exists()
    assert json.loads(Path(week_root.path(layout.stats_marker(STAGE, WEEK))).read_text())["samples"] > 0
