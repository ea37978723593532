"""Hostile members become error rows naming the week and the member, and the week's other patents are kept: encrypted,
deflate64, a sheet name over 100 characters, a doc-number with a dot or of 150 characters, links named like patents,
a patent without drawings. Patents in = patents out + error rows, for every hostile week."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.driver import INGEST
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_sheet_image, read_table

from tests.fixtures.builders import faulty_week
from tests.fixtures.hostile import GOOD, WEEK, good_members, hostile_week_members, hostile_week_zip, write_members


def _ingest(tmp_path: Path, archive: Path):
    folder = DataFolder(tmp_path / "data")
    with WeekWriter(folder, WEEK, archive.name) as sink:
        stats = ingest_archive(str(archive), archive.name, WEEK, sink)
    return folder, stats


def _design_members(archive: Path) -> int:
    """Patents in, counted from the archive itself: every member named like a design patent's ZIP, links too."""
    if archive.suffix == ".zip":
        import zipfile
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
    else:
        with tarfile.open(archive) as tar:
            names = tar.getnames()
    return sum(1 for n in names if "/DESIGN/" in n and n.upper().endswith(".ZIP") and "UTIL" not in n)


_MEMBERS, _EXPECTED = hostile_week_members()


@pytest.mark.parametrize("member", sorted(_EXPECTED), ids=lambda m: _EXPECTED[m])
def test_one_bad_member_is_an_error_row_and_the_week_keeps_its_patents(tmp_path: Path, member: str) -> None:
    bad = next(m for m in _MEMBERS if (m.name if isinstance(m, tarfile.TarInfo) else m[0]) == member)
    archive = write_members(tmp_path / "I20210209.tar", [*good_members(), bad])
    folder, stats = _ingest(tmp_path, archive)
    assert sorted(read_table(folder, "patents").column("patent_id").to_pylist()) == sorted(GOOD)
    errors = read_table(folder, "errors").to_pylist()
    assert [(e["member"], e["reason"]) for e in errors] == [(member, _EXPECTED[member])]
    error = errors[0]
    assert error["week"] == WEEK and error["source_archive"] == "I20210209.tar" and error["detail"]
    assert error["patent_id"] == member.rsplit("/", 1)[-1].split("-")[0]
    assert stats.documents_in == 3 and stats.patents == 2 and stats.errors == 1
    assert stats.errors_by_reason == {_EXPECTED[member]: 1}
    for sheet in read_table(folder, "sheets").to_pylist():  # the kept patents' images are whole
        assert sheet["patent_id"] in GOOD and len(read_sheet_image(folder, sheet)) == sheet["image_size"]


def test_patents_in_equal_patents_out_plus_error_rows_over_every_hostile_week(tmp_path: Path) -> None:
    tar = write_members(tmp_path / "tar" / "I20210209.tar", _MEMBERS)
    zipped, zip_expected = hostile_week_zip(tmp_path / "zip" / "I20210209.zip")
    faulty = faulty_week(tmp_path / "faulty" / "I20210209.tar")
    for archive, expected in ((tar, _EXPECTED), (zipped, zip_expected), (faulty, None)):
        folder, stats = _ingest(archive.parent, archive)
        patents = read_table(folder, "patents").to_pylist()
        errors = read_table(folder, "errors").to_pylist()
        patents_in = _design_members(archive) - stats.skipped_not_design
        assert patents_in == len(patents) + len(errors) == stats.documents_in, archive
        assert len({e["member"] for e in errors}) == len(errors), "each bad member is recorded once"
        if expected is not None:
            assert {e["member"]: e["reason"] for e in errors} == expected
            assert sorted(p["patent_id"] for p in patents) == sorted(GOOD)


def test_the_driver_writes_the_week_and_its_marker_adds_up(tmp_path: Path) -> None:
    archive = write_members(tmp_path / "I20210209.tar", _MEMBERS)
    folder = DataFolder(tmp_path / "data")
    result = INGEST.run(folder, WeeklyArchive(week=WEEK, name=archive.name, url=archive.as_uri(), source="local"))
    marker = folder.read_json(layout.stats_marker("ingest", WEEK))
    assert marker["documents_in"] == marker["patents"] + marker["errors"] == len(_MEMBERS)
    assert marker["patents"] == 2 and sum(marker["errors_by_reason"].values()) == len(_EXPECTED)
    assert result.stats["errors"] == len(_EXPECTED)
    assert not folder.exists(layout.failure_record("ingest", WEEK))


def test_a_sheet_name_and_patent_id_that_fit_are_stored_as_before(tmp_path: Path) -> None:
    """The refusals are narrow: 100-character names and 32-character ids still fit."""
    from tests.fixtures.hostile import design_member, long_sheet_name_zip, odd_doc_number_zip
    members = [(design_member("USD0999301"), long_sheet_name_zip("USD0999301", length=100 - len("USD0999301/"))),
               (design_member("USD0999302"), odd_doc_number_zip("USD0999302", "D" + "9" * 29))]
    archive = write_members(tmp_path / "I20210209.tar", members)
    folder, stats = _ingest(tmp_path, archive)
    assert stats.errors == 0 and stats.patents == 2
    assert {"USD0999301", "US" + "D" + "9" * 29} == set(read_table(folder, "patents").column("patent_id").to_pylist())

