"""The storage layer behaves the same on a local folder and on an object-store-like fsspec URL."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from designclip.pipeline.ingest.mirror import build_weekly_tar
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_sheet_image, read_table

from tests.conftest import patent_folder

WEEK = dt.date(2021, 2, 9)


def test_a_week_on_a_memory_url_round_trips(tmp_path: Path) -> None:
    spoon = patent_folder("USD0909824")
    archive = build_weekly_tar(WEEK, [spoon], tmp_path / "I20210209.tar")
    folder = DataFolder(f"memory://designclip-{uuid.uuid4().hex[:8]}")
    assert not folder.is_local
    with WeekWriter(folder, WEEK, archive.name) as sink:
        ingest_archive(str(archive), archive.name, WEEK, sink)
    assert read_table(folder, "patents").column("title").to_pylist() == ["Sport spoon"]
    sheet = read_table(folder, "sheets").to_pylist()[2]
    assert read_sheet_image(folder, sheet) == (spoon / sheet["file"]).read_bytes()
    assert not [p for p in folder.fs.find(folder.root) if ".tmp" in p], "no temporary files left behind"


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    folder.write_json("a/b.json", {"v": 1})
    with pytest.raises(RuntimeError), folder.atomic_open("a/b.json", "w") as f:
        f.write('{"v": 2, "trunc')
        raise RuntimeError("crash mid-write")
    assert folder.read_json("a/b.json") == {"v": 1}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.json"]


def test_paths_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        DataFolder(tmp_path).path("patents/../../etc/passwd")
