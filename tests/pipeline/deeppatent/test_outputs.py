"""`deeppatent build` on ingested 2018 weeks of renamed sample patents: images as listed, lists as they are, a
training split without any val/test patent, every missing sheet and week named, finished weeks skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from designclip.pipeline.deeppatent.driver import DeepPatentOptions
from designclip.pipeline.deeppatent.lists import TRAIN_LIST, read_lists
from designclip.pipeline.deeppatent.outputs import build, train_lines
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from PIL import Image

from tests.fixtures.deeppatent import ABSENT_WEEK, LISTS, TEST_WEEK, TRAIN_PATENTS, VAL_WEEK, ingested_deeppatent_weeks


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataFolder, Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("deeppatent")
    folder = ingested_deeppatent_weeks(tmp)
    return folder, tmp, build(folder, DeepPatentOptions(str(LISTS)))


def _out(folder: DataFolder, rel: str) -> Path:
    return Path(folder.path(layout.deeppatent_file(layout.DEFAULT_DEEPPATENT_NAME, rel)))


def _source_tiff(tmp: Path, path: str) -> Path:
    week, patent, stem = path.split("/")
    return tmp / "patents" / week[1:] / patent / f"{stem[: -len('.png')]}.TIF"


def test_every_listed_sheet_of_the_archived_patents_is_written_as_listed(built) -> None:
    folder, tmp, summary = built
    lists = read_lists(LISTS)
    written = 0
    for week in (TEST_WEEK, VAL_WEEK):
        for path in lists.sheets_of_week(week):
            tiff = _source_tiff(tmp, path)
            png = _out(folder, f"images/{path}")
            assert png.exists() == tiff.exists(), path
            if tiff.exists():
                image = Image.open(png)
                assert image.mode == "L"
                assert np.array_equal(np.asarray(image), np.asarray(Image.open(tiff).convert("L"))), path
                written += 1
    assert written == 9 + 8 and summary["weeks_built"] == 2 and summary["skipped"] == 0


def test_lists_round_trip_byte_for_byte(built) -> None:
    folder, _, _ = built
    for source in [*LISTS.glob("*.txt"), LISTS / "LICENSE"]:
        assert _out(folder, f"lists/{source.name}").read_bytes() == source.read_bytes(), source.name
    covered = 0
    for line in (LISTS / "test_db_patent.txt").read_text().splitlines():  # each covered line names a written image
        covered += _out(folder, "images/" + line.split()[0]).exists()
    assert covered == 8  # USD0834581's D00001..D00010 minus D00009/10 (not archived); USD0807264 not ingested


def test_missing_sheets_and_weeks_are_reported_by_name(built) -> None:
    folder, _, summary = built
    missing = folder.read_json(layout.deeppatent_file(layout.DEFAULT_DEEPPATENT_NAME, "missing.json"))
    assert missing["sheets"] == [
        {"path": f"I20181127/USD0834581-20181127/USD0834581-20181127-D{k:05d}.png", "reason": "not_in_archive"}
        for k in (9, 10)]
    assert missing["weeks_not_built"] == {ABSENT_WEEK.isoformat(): 7}
    assert missing["weeks_not_ingested"] == [ABSENT_WEEK.isoformat()]
    assert missing["missing_sheets"] == summary["missing_sheets"] == 9 and missing["listed_sheets"] == 26
    assert len(missing["range_weeks_not_ingested"]) == 78 - 2
    assert "missing: 9 of 26 listed sheets" in missing["summary"]
    readme = _out(folder, "README.md").read_text()
    assert "not public" in readme and missing["summary"] in readme and "| `test_db_patent.txt` | 14 | 2 | 8 |" in readme


def test_training_split_is_the_unlisted_patents_one_label_each(built) -> None:
    folder, tmp, summary = built
    lines = [line.split() for line in _out(folder, f"lists/{TRAIN_LIST}").read_text().splitlines()]
    patents = {path.split("/")[1].split("-")[0] for path, _ in lines}
    assert patents == TRAIN_PATENTS and not patents & read_lists(LISTS).held_out()
    labels = {path.split("/")[1]: label for path, label in lines}
    assert sorted(labels.values()) == ["1", "2"] and len(lines) == 4 + 4 == summary["train_sheets"]
    for path, _ in lines:
        assert _out(folder, f"images/{path}").exists() and _source_tiff(tmp, path).exists()


def test_rerun_skips_finished_weeks_and_redoes_one_without_its_marker(built) -> None:
    folder, _, _ = built
    options = DeepPatentOptions(str(LISTS))
    png = _out(folder, "images/I20180220/USD0810412-20180220/USD0810412-20180220-D00003.png")
    before = png.stat().st_mtime_ns
    assert build(folder, options)["skipped"] == 2 and png.stat().st_mtime_ns == before
    folder.remove(layout.stats_marker(layout.deeppatent_stage(options.name), VAL_WEEK))
    again = build(folder, options)
    assert again["skipped"] == 1 and [r.unit for r in again["results"] if r.computed] == ["I20180220"]
    assert png.stat().st_mtime_ns == before  # whole PNGs of an unfinished week are kept


def test_train_lines_label_patents_in_week_order() -> None:
    records = {dt.date(2018, 1, 9): {"train": ["I20180109/A-20180109/A-20180109-D00000.png",
                                               "I20180109/A-20180109/A-20180109-D00001.png"]},
               dt.date(2018, 1, 2): {"train": ["I20180102/B-20180102/B-20180102-D00000.png"]},
               dt.date(2018, 1, 16): None}
    text, patents, sheets = train_lines(records)
    assert text == ("I20180102/B-20180102/B-20180102-D00000.png 1\nI20180109/A-20180109/A-20180109-D00000.png 2\n"
                    "I20180109/A-20180109/A-20180109-D00001.png 2\n") and (patents, sheets) == (2, 3)
