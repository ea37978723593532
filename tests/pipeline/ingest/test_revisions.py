"""Revised weekly archives found by re-listing the weeks before a window on a loopback ODP server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.listing import list_odp
from designclip.pipeline.ingest.revisions import (
    Revision,
    find_revisions,
    ingested_archives,
    newer_revisions,
    relist_span,
    revised_weeks,
)
from designclip.storage.folder import DataFolder
from designclip.storage.tables import write_marker

from tests.fixtures.httpmirror import make_weekly_tar, serve_mirror

D = dt.date
KEY = "odp-Key-revisions"
# Weeks of Dec 2020 - Jan 2021; 01-05 is republished twice, 12-29 once, 01-12 (never ingested) once.
FILES = ["I20201222.tar", "I20201229.tar", "I20201229_r1.tar", "I20210105.tar", "I20210105_r1.tar",
         "I20210105_r2.tar", "I20210112.tar", "I20210112_r1.tar", "I20210119.tar"]
RELEASED = {"I20201229_r1.tar": D(2021, 1, 26), "I20210105_r1.tar": D(2021, 1, 20),
            "I20210105_r2.tar": D(2021, 2, 9), "I20210112_r1.tar": D(2021, 1, 20)}


@pytest.fixture
def mirror_root(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    for i, name in enumerate(FILES):
        make_weekly_tar(root, name, {f"{name[:9]}/DESIGN/x{i}.ZIP": b"PK" + bytes(i)})
    return root


def _ingested(folder: DataFolder, archives: dict[dt.date, str]) -> None:
    for week, name in archives.items():
        write_marker(folder, "ingest", week, {"source_archive": name, "patents": 1})


def _archive(name: str, revision: int = 0) -> WeeklyArchive:
    week = dt.datetime.strptime(name[1:9], "%Y%m%d").date()
    return WeeklyArchive(week, name, f"http://x/{name}", revision=revision)


def test_relist_span_is_the_weeks_just_before_the_window() -> None:
    assert relist_span(D(2021, 3, 1)) == (D(2021, 1, 4), D(2021, 2, 28))  # 8 weeks by default
    assert relist_span(D(2021, 3, 1), 1) == (D(2021, 2, 22), D(2021, 2, 28))
    assert relist_span(D(2021, 3, 1), 0) is None
    with pytest.raises(ValueError, match="use 0"):
        relist_span(D(2021, 3, 1), -1)


def test_newer_revisions_only_for_finished_weeks_with_a_higher_revision() -> None:
    ingested = {D(2021, 1, 5): "I20210105.tar", D(2021, 1, 12): "I20210112_r2.tar", D(2021, 1, 19): "I20210119.tar",
                D(2021, 1, 26): "ipg210126.xml"}
    listed = [_archive("I20210105.tar"), _archive("I20210105_r1.tar", 1),  # newer: r1 replaces the original
              _archive("I20210112_r1.tar", 1),  # older than what was ingested: no change
              _archive("I20210119.zip"),  # same revision, another name: not newer
              _archive("I20210126_r1.tar", 1),  # a local no-images file counts as revision 0
              _archive("I20210202_r1.tar", 1)]  # never finished here: not a revision
    assert newer_revisions(ingested, reversed(listed)) == [
        Revision(D(2021, 1, 5), "I20210105.tar", "I20210105_r1.tar"),
        Revision(D(2021, 1, 26), "ipg210126.xml", "I20210126_r1.tar")]


def test_find_revisions_on_an_unsorted_odp_listing_as_revisions_appear(mirror_root: Path, tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "data")
    _ingested(folder, {D(2020, 12, 22): "I20201222.tar", D(2020, 12, 29): "I20201229.tar",
                       D(2021, 1, 5): "I20210105.tar"})  # 01-12 failed or was never run; 01-19 is the window's
    window_start = D(2021, 1, 13)
    with serve_mirror(mirror_root, api_key=KEY, today=D(2021, 1, 13), released=RELEASED) as mirror:
        def lister(start: dt.date, end: dt.date) -> list[WeeklyArchive]:
            return list_odp(start, end, base_url=mirror.base_url, api_key=KEY, page_size=2)

        assert find_revisions(folder, window_start, lister) == []  # nothing republished yet
        shown = mirror.odp_listing(D(2020, 11, 1), D(2021, 1, 12))
        assert [p.name for p in shown] != sorted(p.name for p in shown)  # the listing is not date-sorted
        mirror.today = D(2021, 1, 20)  # 01-05_r1 (and 01-12_r1, for a week never finished) are published
        assert find_revisions(folder, window_start, lister) == [
            Revision(D(2021, 1, 5), "I20210105.tar", "I20210105_r1.tar")]
        mirror.today = D(2021, 2, 10)  # 12-29_r1 and 01-05_r2 too; the listing spans pages in no order
        assert find_revisions(folder, window_start, lister) == [
            Revision(D(2020, 12, 29), "I20201229.tar", "I20201229_r1.tar"),
            Revision(D(2021, 1, 5), "I20210105.tar", "I20210105_r2.tar")]
        assert find_revisions(folder, window_start, lister, weeks=2) == [  # 12-30 .. 01-12: 12-29 not re-listed
            Revision(D(2021, 1, 5), "I20210105.tar", "I20210105_r2.tar")]
        listing = [p for p in mirror.paths() if p.startswith("/api/v1/datasets/products/PTGRDT")]
    assert "fileDataFromDate=2020-11-18" in listing[0] and "fileDataToDate=2021-01-12" in listing[0]


def test_nothing_is_listed_without_a_finished_week_before_the_window(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "data")

    def refuse(start: dt.date, end: dt.date) -> list[WeeklyArchive]:
        raise AssertionError("listed although nothing could be revised")

    assert find_revisions(folder, D(2021, 1, 13), refuse) == []  # a fresh data root
    _ingested(folder, {D(2021, 1, 19): "I20210119.tar"})  # finished, but in the window, not before it
    write_marker(folder, "ingest", D(2021, 1, 5), {"patents": 1})  # an old marker that names no archive
    assert find_revisions(folder, D(2021, 1, 13), refuse) == []
    assert ingested_archives(folder, D(2021, 1, 1), D(2021, 1, 31)) == {D(2021, 1, 19): "I20210119.tar"}
    _ingested(folder, {D(2021, 1, 12): "I20210112.tar"})
    assert find_revisions(folder, D(2021, 1, 13), refuse, weeks=0) == []  # re-listing turned off


def test_revised_weeks_come_from_the_ingest_markers(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "data")
    _ingested(folder, {D(2021, 1, 12): "I20210112.tar"})
    write_marker(folder, "ingest", D(2021, 1, 5), {"source_archive": "I20210105_r1.tar",
                                                   "revised_from": "I20210105.tar"})
    write_marker(folder, "ingest", D(2021, 2, 2), {"source_archive": "I20210202_r2.tar",
                                                   "revised_from": "I20210202_r1.tar"})
    weeks = [D(2021, 2, 2), D(2021, 1, 12), D(2021, 1, 5), D(2021, 1, 5), D(2021, 3, 2)]  # 03-02: no marker
    assert revised_weeks(folder, weeks) == [
        {"week": "2021-01-05", "from": "I20210105.tar", "to": "I20210105_r1.tar"},
        {"week": "2021-02-02", "from": "I20210202_r1.tar", "to": "I20210202_r2.tar"}]
    assert revised_weeks(folder, [D(2021, 1, 12)]) == []
