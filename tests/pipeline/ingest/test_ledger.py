"""The download ledger and the Open Data Portal's manners: a yearly limit per file, >= 5 s after 429, one at a time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from designclip.pipeline.ingest import download as download_module
from designclip.pipeline.ingest.download import DownloadError, download_archive
from designclip.pipeline.ingest.ledger import (
    ODP_DOWNLOADS_PER_YEAR,
    DownloadLimitReached,
    check_limit,
    downloads_last_year,
    record_download,
)
from designclip.pipeline.ingest.sources import ODP_429_MIN_DELAY_S, download_policy
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.httpmirror import FaultPlan, serve_mirror
from tests.pipeline.ingest.test_download import FAST, NAME, WEEK, bdss_archive, root  # noqa: F401 (fixture)


def test_the_limit_counts_downloads_of_the_last_365_days(tmp_path: Path) -> None:
    folder, archive = DataFolder(tmp_path), bdss_archive("http://127.0.0.1:1")
    today = dt.date(2026, 11, 30)
    for when in ("2025-11-01", "2026-01-10", "2026-06-01"):  # the first is more than a year ago
        record_download(folder, archive, dt.datetime.fromisoformat(when))
    assert downloads_last_year(folder, archive, today) == 2
    check_limit(folder, archive, 3, today)
    check_limit(folder, archive, None, today)
    with pytest.raises(DownloadLimitReached, match="downloaded 2 times in the last year, the limit is 2"):
        check_limit(folder, archive, 2, today)


def test_a_download_past_the_limit_is_refused_and_each_one_is_recorded(root: Path, tmp_path: Path) -> None:  # noqa: F811
    folder = DataFolder(tmp_path / "data")
    options = dataclasses.replace(FAST, max_per_year=2)
    with serve_mirror(root) as mirror:
        archive = bdss_archive(mirror.base_url)
        for _ in range(2):  # downloaded, then deleted after its ingest (--keep-raw none), then forced again
            download_archive(archive, folder, options=options)
            folder.remove(layout.raw_archive(WEEK, NAME))
        with pytest.raises(DownloadError, match="--keep-raw all, or raise --download-limit"):
            download_archive(archive, folder, options=options)
        assert sum(1 for r in mirror.requests if r.method == "GET" and NAME in r.path) == 2
    assert len(folder.read_json(layout.download_ledger(WEEK, NAME))["downloads"]) == 2


def test_a_429_waits_at_least_the_source_minimum(root: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    slept: list[float] = []
    monkeypatch.setattr(download_module.time, "sleep", slept.append)
    options = dataclasses.replace(FAST, min_delay_429_s=ODP_429_MIN_DELAY_S)
    with serve_mirror(root, FaultPlan(status_then_ok={NAME: [429, 503]})) as mirror:
        download_archive(bdss_archive(mirror.base_url), DataFolder(tmp_path / "data"), options=options)
    assert slept[0] >= ODP_429_MIN_DELAY_S and slept[1] < 1.0  # the 503 keeps the fast backoff


def test_the_open_data_portal_gets_one_download_at_a_time_and_its_yearly_quota() -> None:
    workers, options = download_policy("odp", None, None)
    assert (workers, options.max_per_year, options.min_delay_429_s) == (1, ODP_DOWNLOADS_PER_YEAR, 5.0)
    workers, options = download_policy("bdss", None, None)
    assert (workers, options.max_per_year, options.min_delay_429_s) == (2, None, 0.0)
    assert download_policy("odp", 3, 40)[0] == 3 and download_policy("odp", 3, 40)[1].max_per_year == 40
