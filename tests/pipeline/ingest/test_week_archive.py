"""The ingest stage on real archives: every design member ends up as a patent row or an error row."""

from __future__ import annotations

import datetime as dt
import hashlib
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from designclip.pipeline.ingest.archive import ArchiveError
from designclip.pipeline.ingest.mirror import build_ipg, build_weekly_tar
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_sheet_image, read_table

from tests.conftest import patent_folder
from tests.fixtures.builders import faulty_week

WEEK = dt.date(2021, 2, 9)


def _ingest(tmp_path: Path, archive: Path, week: dt.date = WEEK):
    folder = DataFolder(tmp_path / "data")
    with WeekWriter(folder, week, archive.name) as sink:
        stats = ingest_archive(str(archive), archive.name, week, sink)
    return folder, stats


def test_faulty_week_records_every_bad_member(tmp_path: Path) -> None:
    archive = faulty_week(tmp_path / "I20210209.tar")
    folder, stats = _ingest(tmp_path, archive)
    patents = read_table(folder, "patents").to_pylist()
    errors = read_table(folder, "errors").to_pylist()
    assert sorted(p["patent_id"] for p in patents) == ["USD0909824", "USD0910059"]
    by_member = {e["member"].rsplit("/", 1)[-1]: e["reason"] for e in errors}
    assert by_member == {
        "USD0999001-20210209.ZIP": "corrupt_zip",
        "USD0999002-20210209.ZIP": "malformed_xml",
        "USD0999003-20210209.ZIP": "unsafe_path",
        "USD0999004-20210209.ZIP": "unsafe_path",
    }
    assert {e["patent_id"] for e in errors} == {"USD0999001", "USD0999002", "USD0999003", "USD0999004"}
    # Patents in = rows in patents + rows in errors; the utility grant and UTIL/SUPP members are counted skips.
    assert stats.documents_in == len(patents) + len(errors) == 6
    assert stats.skipped_not_design == 1
    assert stats.skipped_members == {"UTIL0123": 1, "SUPP": 1}
    assert all(e["source_archive"] == "I20210209.tar" and e["detail"] for e in errors)


def test_sheet_images_read_back_byte_for_byte(tmp_path: Path) -> None:
    spoon = patent_folder("USD0909824")
    archive = build_weekly_tar(WEEK, [spoon], tmp_path / "I20210209.tar")
    folder, stats = _ingest(tmp_path, archive)
    sheets = read_table(folder, "sheets").to_pylist()
    assert [s["sheet"] for s in sheets] == [0, 1, 2, 3]
    for sheet in sheets:
        original = (spoon / sheet["file"]).read_bytes()
        assert read_sheet_image(folder, sheet) == original
        assert sheet["image_sha256"] == hashlib.sha256(original).hexdigest()
        assert sheet["image_status"] == "ok" and sheet["width_px"] > 100 and sheet["height_px"] > 100
    # The images file is a plain tar that people can list and extract.
    with tarfile.open(folder.path("images/I20210209.tar")) as tar:
        assert sorted(tar.getnames()) == sorted(f"USD0909824/{s['file']}" for s in sheets)
    assert stats.images == 4


def test_missing_sheet_is_flagged_not_dropped(tmp_path: Path) -> None:
    spoon = patent_folder("USD0909824")
    partial = tmp_path / "USD0909824-20210209"
    partial.mkdir()
    for f in spoon.iterdir():
        if not f.name.endswith("D00002.TIF"):
            (partial / f.name).write_bytes(f.read_bytes())
    archive = build_weekly_tar(WEEK, [partial], tmp_path / "I20210209.tar")
    folder, stats = _ingest(tmp_path, archive)
    status = {s["sheet"]: s["image_status"] for s in read_table(folder, "sheets").to_pylist()}
    assert status == {0: "ok", 1: "ok", 2: "missing", 3: "ok"}
    assert stats.images_missing == 1 and stats.patents == 1


def test_truncated_weekly_tar_fails_the_week_and_leaves_no_tables(tmp_path: Path) -> None:
    archive = build_weekly_tar(WEEK, [patent_folder("USD0909824"), patent_folder("USD0910059")],
                               tmp_path / "I20210209.tar")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 3])
    folder = DataFolder(tmp_path / "data")
    with pytest.raises(ArchiveError), WeekWriter(folder, WEEK, archive.name) as sink:
        ingest_archive(str(archive), archive.name, WEEK, sink)
    leftovers = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert leftovers == [], "a failed week must leave neither tables nor temporary files"


def test_ipg_form_parses_without_images(tmp_path: Path) -> None:
    folders = [patent_folder("USD0909824"), patent_folder("USD0910059"), patent_folder("USD0911449")]
    ipg = build_ipg(folders, tmp_path / "ipg210209.xml")
    folder, stats = _ingest(tmp_path, ipg)
    assert stats.patents == 3 and stats.errors == 0
    sheets = read_table(folder, "sheets").to_pylist()
    assert len(sheets) == 4 + 2 + 68
    assert {s["image_status"] for s in sheets} == {"not_in_source"}
    figures = pq.read_table(folder.path("figures/I20210209.parquet"))
    assert figures.num_rows == 7 + 1 + 93


def test_an_unknown_dtd_version_is_parsed_with_the_newest_rules_warned_once_and_counted(tmp_path: Path,
                                                                                        caplog) -> None:
    from tests.fixtures.builders import zip_bytes

    def newer(folder: Path, cut: int | None = None) -> bytes:
        """The patent's ZIP with its XML declaring a DTD version from the future (optionally cut: unparseable)."""
        files = {f"{folder.name}/{f.name}": f.read_bytes() for f in sorted(folder.iterdir())}
        xml_name = next(n for n in files if n.endswith(".XML"))
        xml = files[xml_name].replace(b'dtd-version="v4.5 2014-04-03"', b'dtd-version="v4.9 2030-01-01"')
        files[xml_name] = xml[:cut] if cut else xml
        return zip_bytes(files)

    top = f"I{WEEK:%Y%m%d}"
    extra = {f"{top}/DESIGN/USD0999011-{WEEK:%Y%m%d}.ZIP": newer(patent_folder("USD0910059")),
             f"{top}/DESIGN/USD0999012-{WEEK:%Y%m%d}.ZIP": newer(patent_folder("USD0910059"), cut=3000)}
    archive = build_weekly_tar(WEEK, [patent_folder("USD0909824")], tmp_path / "I20210209.tar", extra=extra)
    with caplog.at_level("WARNING", logger="designclip.pipeline.ingest.week_archive"):
        folder, stats = _ingest(tmp_path, archive)
    assert stats.dtd_unknown == {"v4.9": 2} and stats.dtd_unknown_failed == 1
    assert stats.patents == 2 and stats.errors == 1  # the v4.9 document parsed; the cut one is an error row
    ids = set(read_table(folder, "patents").column("patent_id").to_pylist())
    assert ids == {"USD0909824", "USD0910059"}
    warnings = [r.getMessage() for r in caplog.records if "v4.9" in r.getMessage()]
    assert len(warnings) == 1 and "parsing it with the v4.7 rules" in warnings[0]
