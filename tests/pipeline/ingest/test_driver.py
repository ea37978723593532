"""The ingest driver without Prefect: a week is parsed once, skipped while done, listed by its downloads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from designclip.pipeline.common.stage import Scope
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.driver import INGEST, IngestOptions, ingested_weeks
from designclip.pipeline.ingest.mirror import build_weekly_tar, group_by_week
from designclip.pipeline.ingest.parse import PARSER_VERSION
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import FINGERPRINT_KEY

from tests.conftest import SAMPLE

WEEK = dt.date(2021, 5, 4)  # a cheap sample week


def _archive(tmp_path: Path) -> WeeklyArchive:
    tar = build_weekly_tar(WEEK, group_by_week(SAMPLE)[WEEK], tmp_path / f"I{WEEK:%Y%m%d}.tar")
    return WeeklyArchive(week=WEEK, name=tar.name, url=tar.as_uri(), source="local")


def test_run_once_then_skipped(tmp_path: Path) -> None:
    folder, archive = DataFolder(tmp_path / "data"), _archive(tmp_path)
    progress: list[tuple[int, int | None]] = []
    assert not INGEST.is_done(folder, archive, IngestOptions())
    first = INGEST.run(folder, archive, IngestOptions(), lambda done, total: progress.append((done, total)))
    assert (first.stage, first.unit, first.skipped) == ("ingest", "I20210504", False)
    assert first.stats["patents"] > 0 and first.stats["source_archive"] == archive.name
    marker = folder.read_json(layout.stats_marker("ingest", WEEK))
    assert marker == dict(first.stats)
    assert marker["settings"] == {"source_archive": archive.name, "parser_version": PARSER_VERSION}
    assert INGEST.is_done(folder, archive, IngestOptions())
    again = INGEST.run(folder, archive)
    assert again.skipped and again.stats == first.stats
    assert ingested_weeks(folder, WEEK, WEEK) == [WEEK]


def test_a_marker_from_before_settings_still_counts_and_a_new_revision_is_redone(tmp_path: Path) -> None:
    folder, archive = DataFolder(tmp_path / "data"), _archive(tmp_path)
    record = dict(INGEST.run(folder, archive).stats)
    old = {k: v for k, v in record.items() if k not in ("settings", FINGERPRINT_KEY)}
    folder.write_json(layout.stats_marker("ingest", WEEK), old)
    assert INGEST.run(folder, archive).skipped
    revised = WeeklyArchive(week=WEEK, name="I20210504_r1.tar", url=archive.url, source="local")
    assert not INGEST.is_done(folder, revised, IngestOptions())
    assert not INGEST.run(folder, revised).skipped


def test_units_are_the_given_and_downloaded_archives_of_the_scope(tmp_path: Path) -> None:
    folder, archive = DataFolder(tmp_path / "data"), _archive(tmp_path)
    scope = Scope(dt.date(2021, 1, 1), dt.date(2021, 12, 31), release="r", run="t", size_profile="px512")
    assert INGEST.units(folder, scope, IngestOptions()) == []
    downloaded = WeeklyArchive(week=dt.date(2021, 8, 31), name="I20210831.tar", url="https://x/I20210831.tar")
    folder.write_json(layout.raw_manifest(downloaded.week, downloaded.name),
                      {"name": downloaded.name, "url": downloaded.url, "size": 3, "source": "bdss"})
    with folder.atomic_open(layout.raw_archive(downloaded.week, downloaded.name)) as f:
        f.write(b"tar")
    units = INGEST.units(folder, scope, IngestOptions(archives=(archive,)))
    assert [(u.name, u.source) for u in units] == [(archive.name, "local"), (downloaded.name, "bdss")]
    before = Scope(dt.date(2020, 1, 1), dt.date(2020, 12, 31), release="r", run="t", size_profile="px512")
    assert INGEST.units(folder, before, IngestOptions(archives=(archive,))) == []
