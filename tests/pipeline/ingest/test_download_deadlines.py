"""Downloads have deadlines: a silent server (stall timeout) and a dripping one (minimum rate) end the attempt, and
the next attempt resumes with Range; a server that never answers is given up on in seconds, the part kept."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

import pytest
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.download import DownloadOptions, TransientDownloadError, download_archive
from designclip.storage.folder import DataFolder

from tests.fixtures.httpmirror import FaultPlan, bdss_path, make_sample_week, serve_mirror

WEEK = dt.date(2021, 1, 5)
NAME = "I20210105.tar"
# Deadlines of about a second, so a test takes a few seconds (the defaults are a minute).
QUICK = DownloadOptions(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5, stall_timeout_s=1.0,
                        min_rate_bytes_s=2000, min_rate_window_s=1.0)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    mirror_root = tmp_path / "mirror"
    make_sample_week(mirror_root, NAME)
    return mirror_root


def archive_at(base_url: str) -> WeeklyArchive:
    return WeeklyArchive(WEEK, NAME, f"{base_url}/data/patent/grant/redbook/2021/{NAME}")


def gets(mirror) -> list:  # noqa: ANN001 - Mirror
    return [r for r in mirror.requests if r.method == "GET" and NAME in r.path]


def test_a_stalled_transfer_is_resumed_with_range_after_the_stall_timeout(root: Path, tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "data")
    began = time.monotonic()
    with serve_mirror(root, FaultPlan(stall_after_bytes={NAME: 30_000})) as mirror:
        result = download_archive(archive_at(mirror.base_url), folder, options=QUICK)
        requests = gets(mirror)
    took = time.monotonic() - began
    assert result.attempts == 2 and result.resumed_from == 30_000
    assert requests[1].headers["Range"] == "bytes=30000-"
    assert result.sha256 == hashlib.sha256(bdss_path(root, NAME).read_bytes()).hexdigest()
    assert 1.0 <= took < 10, took


def test_a_dripping_server_trips_the_minimum_rate_and_the_next_attempt_resumes(root: Path, tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "data")
    began = time.monotonic()
    # One byte every 0.2 s never trips the 1 s stall timeout; the rate rule (2000 B/s over 1 s) ends it.
    with serve_mirror(root, FaultPlan(drip_interval_s={NAME: 0.2})) as mirror:
        result = download_archive(archive_at(mirror.base_url), folder, options=QUICK)
        requests = gets(mirror)
    took = time.monotonic() - began
    assert result.attempts == 2 and 3 <= result.resumed_from <= 10
    assert requests[1].headers["Range"] == f"bytes={result.resumed_from}-"
    assert result.sha256 == hashlib.sha256(bdss_path(root, NAME).read_bytes()).hexdigest()
    assert 1.0 <= took < 10, took


def test_a_server_that_never_answers_is_given_up_on_after_two_silent_attempts(root: Path, tmp_path: Path) -> None:
    folder = DataFolder(tmp_path / "data")
    began = time.monotonic()
    with serve_mirror(root, FaultPlan(never_answer={NAME})) as mirror:
        with pytest.raises(TransientDownloadError, match=r"gave up after 2 attempts \(stalled: no data for 1 s\)"):
            download_archive(archive_at(mirror.base_url), folder, options=QUICK)
        assert len(gets(mirror)) == 2  # of max_attempts 3: two attempts without any answer end it
    assert time.monotonic() - began < 10


def test_the_deadlines_have_patient_defaults() -> None:
    options = DownloadOptions()
    assert options.stall_timeout_s == 60 and options.min_rate_window_s == 60
    assert 1024 <= options.min_rate_bytes_s <= 64 * 1024 and options.max_silent_attempts == 2
