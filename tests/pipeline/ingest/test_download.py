"""download_archive against a real HTTP mirror on 127.0.0.1: resume, retries, verification, skip."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.download import (
    DownloadError,
    DownloadOptions,
    TransientDownloadError,
    backoff_delay,
    download_archive,
    parse_retry_after,
)
from designclip.pipeline.ingest.listing import list_odp
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.httpmirror import FaultPlan, bdss_path, make_sample_week, serve_mirror

WEEK = dt.date(2021, 1, 5)
NAME = "I20210105.tar"
FAST = DownloadOptions(backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5)
KEY = "s3cr3t-Key-9f8e7d"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A BDSS-layout mirror folder with one real weekly tar built from the sample patents."""
    mirror_root = tmp_path / "mirror"
    make_sample_week(mirror_root, NAME)
    return mirror_root


@pytest.fixture
def folder(tmp_path: Path) -> DataFolder:
    return DataFolder(tmp_path / "data")


def source(root: Path, name: str = NAME) -> Path:
    return bdss_path(root, name)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bdss_archive(base_url: str, name: str = NAME, size: int | None = None) -> WeeklyArchive:
    week = dt.datetime.strptime(name[1:9], "%Y%m%d").date()
    return WeeklyArchive(week, name, f"{base_url}/data/patent/grant/redbook/{week:%Y}/{name}", size)


def final_path(folder: DataFolder, name: str = NAME, week: dt.date = WEEK) -> Path:
    return Path(folder.path(layout.raw_archive(week, name)))


def file_gets(mirror, name: str = NAME) -> list:  # noqa: ANN001 - Mirror
    return [r for r in mirror.requests if r.method == "GET" and name in r.path]


def test_download_writes_verified_archive_and_manifest(root: Path, folder: DataFolder) -> None:
    progress: list[tuple[int, int | None]] = []
    with serve_mirror(root) as mirror:
        result = download_archive(
            bdss_archive(mirror.base_url),
            folder,
            options=FAST,
            on_progress=lambda done, total: progress.append((done, total)),
        )
    src = source(root)
    dest = final_path(folder)
    assert dest.read_bytes() == src.read_bytes()
    assert tarfile.is_tarfile(dest)
    assert result.rel_path == layout.raw_archive(WEEK, NAME)
    assert (result.size, result.sha256) == (src.stat().st_size, sha256_of(src))
    assert (result.resumed_from, result.attempts, result.skipped) == (0, 1, False)
    manifest = folder.read_json(layout.raw_manifest(WEEK, NAME))
    assert manifest["sha256"] == result.sha256 and manifest["size"] == result.size
    assert manifest["name"] == NAME and manifest["source"] == "bdss" and manifest["revision"] == 0
    assert manifest["url"].endswith(f"/2021/{NAME}") and manifest["downloaded_at"]
    assert not Path(f"{dest}.part").exists()
    assert progress[-1] == (result.size, result.size)


def test_second_call_skips_without_any_request(root: Path, folder: DataFolder) -> None:
    with serve_mirror(root) as mirror:
        first = download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        seen = list(mirror.requests)
        second = download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        assert mirror.requests == seen
    assert second.skipped and second.attempts == 0
    assert (second.sha256, second.size) == (first.sha256, first.size)


def test_final_file_without_manifest_is_verified_and_adopted(root: Path, folder: DataFolder) -> None:
    dest = final_path(folder)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(source(root).read_bytes())
    with serve_mirror(root) as mirror:
        result = download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        assert mirror.requests == []
    assert result.skipped and result.sha256 == sha256_of(source(root))
    assert folder.read_json(layout.raw_manifest(WEEK, NAME))["sha256"] == result.sha256


def test_429_honours_retry_after(root: Path, folder: DataFolder) -> None:
    faults = FaultPlan(status_then_ok={NAME: [429]}, retry_after="1")
    options = DownloadOptions(backoff_base_s=0.01, backoff_max_s=5.0, timeout_s=5)
    with serve_mirror(root, faults) as mirror:
        began = time.monotonic()
        result = download_archive(bdss_archive(mirror.base_url), folder, options=options)
        elapsed = time.monotonic() - began
        assert len(file_gets(mirror)) == 2
    assert elapsed >= 0.9, "Retry-After: 1 must be waited out even with a tiny backoff"
    assert result.attempts == 2 and result.sha256 == sha256_of(source(root))


def test_500_twice_then_success(root: Path, folder: DataFolder) -> None:
    with serve_mirror(root, FaultPlan(status_then_ok={NAME: [500, 503]})) as mirror:
        result = download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        assert len(file_gets(mirror)) == 3
    assert result.attempts == 3 and result.sha256 == sha256_of(source(root))


def test_always_500_gives_transient_error_after_max_attempts(root: Path, folder: DataFolder) -> None:
    options = DownloadOptions(max_attempts=4, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5)
    with serve_mirror(root, FaultPlan(always_status={NAME: 500})) as mirror:
        with pytest.raises(TransientDownloadError, match="gave up after 4 attempts"):
            download_archive(bdss_archive(mirror.base_url), folder, options=options)
        assert len(file_gets(mirror)) == 4
    assert not final_path(folder).exists()
    assert not folder.exists(layout.raw_manifest(WEEK, NAME))


def test_cut_connection_resumes_with_range(root: Path, folder: DataFolder) -> None:
    cut = 40_000
    assert source(root).stat().st_size > cut
    with serve_mirror(root, FaultPlan(cut_after_bytes={NAME: cut})) as mirror:
        result = download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        ranges = [r.headers.get("Range") for r in file_gets(mirror)]
    assert ranges == [None, f"bytes={cut}-"]
    assert (result.resumed_from, result.attempts) == (cut, 2)
    assert result.sha256 == sha256_of(source(root))
    assert final_path(folder).read_bytes() == source(root).read_bytes()


def test_part_survives_a_failed_run_and_next_run_resumes(root: Path, folder: DataFolder) -> None:
    cut = 30_001
    one_try = DownloadOptions(max_attempts=1, timeout_s=5)
    with serve_mirror(root, FaultPlan(cut_after_bytes={NAME: cut})) as mirror:
        with pytest.raises(TransientDownloadError):
            download_archive(bdss_archive(mirror.base_url), folder, options=one_try)
        part = Path(f"{final_path(folder)}.part")
        assert part.stat().st_size == cut and not final_path(folder).exists()
        result = download_archive(bdss_archive(mirror.base_url), folder, options=one_try)
        assert file_gets(mirror)[-1].headers["Range"] == f"bytes={cut}-"
    assert result.resumed_from == cut and result.sha256 == sha256_of(source(root))
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(root: Path, folder: DataFolder) -> None:
    part = Path(f"{final_path(folder)}.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 5000)  # stale bytes that must not survive
    with serve_mirror(root, FaultPlan(ignore_range={NAME})) as mirror:
        result = download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        assert file_gets(mirror)[0].headers["Range"] == "bytes=5000-"
    assert result.resumed_from == 0 and result.sha256 == sha256_of(source(root))


def test_html_page_is_rejected_and_not_kept(root: Path, folder: DataFolder) -> None:
    with serve_mirror(root, FaultPlan(html_instead={NAME})) as mirror:
        with pytest.raises(DownloadError, match="HTML") as info:
            download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
        assert len(file_gets(mirror)) == 1, "an HTML page is permanent, not retried"
    assert not isinstance(info.value, TransientDownloadError)
    assert "week 2021-01-05" in str(info.value) and NAME in str(info.value)
    assert not final_path(folder).exists() and not Path(f"{final_path(folder)}.part").exists()


def test_html_body_without_html_content_type_is_rejected(tmp_path: Path, folder: DataFolder) -> None:
    root = tmp_path / "mirror"
    src = bdss_path(root, NAME)
    src.parent.mkdir(parents=True)
    src.write_bytes(b"\n  <!DOCTYPE html><html><body>Error</body></html>")
    with serve_mirror(root) as mirror, pytest.raises(DownloadError, match="HTML"):
        download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
    assert not final_path(folder).exists()


def test_corrupt_body_is_rejected(tmp_path: Path, folder: DataFolder) -> None:
    root = tmp_path / "mirror"
    src = bdss_path(root, NAME)
    src.parent.mkdir(parents=True)
    src.write_bytes(os.urandom(20_000))
    with serve_mirror(root) as mirror, pytest.raises(DownloadError, match="not a valid tar archive"):
        download_archive(bdss_archive(mirror.base_url), folder, options=FAST)
    assert not final_path(folder).exists() and not Path(f"{final_path(folder)}.part").exists()
    assert not folder.exists(layout.raw_manifest(WEEK, NAME))


def test_zip_named_archive_must_be_a_zip(root: Path, folder: DataFolder) -> None:
    zip_name = "I20210105.zip"
    bdss_path(root, zip_name).write_bytes(source(root).read_bytes())  # a tar wearing a .zip name
    with serve_mirror(root) as mirror, pytest.raises(DownloadError, match="not a valid zip archive"):
        download_archive(bdss_archive(mirror.base_url, zip_name), folder, options=FAST)


@pytest.mark.parametrize("delta", [10, -10])
def test_size_mismatch_with_listing(root: Path, folder: DataFolder, delta: int) -> None:
    size = source(root).stat().st_size + delta
    with serve_mirror(root) as mirror, pytest.raises(DownloadError, match="size mismatch") as info:
        download_archive(bdss_archive(mirror.base_url, size=size), folder, options=FAST)
    assert not isinstance(info.value, TransientDownloadError)
    assert not final_path(folder).exists() and not Path(f"{final_path(folder)}.part").exists()


def test_missing_week_is_a_404_download_error(root: Path, folder: DataFolder) -> None:
    name = "I20210112.tar"
    with serve_mirror(root) as mirror:
        with pytest.raises(DownloadError, match="not found at .*not be published yet") as info:
            download_archive(bdss_archive(mirror.base_url, name), folder, options=FAST)
        assert len(file_gets(mirror, name)) == 1
    assert not isinstance(info.value, TransientDownloadError)


def test_file_url_with_resume(root: Path, folder: DataFolder) -> None:
    src = source(root)
    archive = WeeklyArchive(WEEK, NAME, src.as_uri(), src.stat().st_size)
    part = Path(f"{final_path(folder)}.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(src.read_bytes()[:12_345])
    progress: list[tuple[int, int | None]] = []
    result = download_archive(archive, folder, options=FAST, on_progress=lambda d, t: progress.append((d, t)))
    assert result.resumed_from == 12_345 and result.sha256 == sha256_of(src)
    assert final_path(folder).read_bytes() == src.read_bytes()
    assert progress[-1] == (result.size, result.size)
    assert download_archive(archive, folder, options=FAST).skipped


def test_file_url_missing_and_corrupt(tmp_path: Path, folder: DataFolder) -> None:
    missing = WeeklyArchive(WEEK, NAME, (tmp_path / "nope" / NAME).as_uri())
    with pytest.raises(DownloadError, match="not found"):
        download_archive(missing, folder, options=FAST)
    junk = tmp_path / NAME
    junk.write_bytes(b"\x01" + os.urandom(4095))  # never "<" first: that reads as an HTML page
    with pytest.raises(DownloadError, match="not a valid tar"):
        download_archive(WeeklyArchive(WEEK, NAME, junk.as_uri()), folder, options=FAST)


def test_remote_folder_stages_locally_then_uploads(root: Path, tmp_path: Path) -> None:
    remote = DataFolder(f"memory://dl-test-{uuid.uuid4().hex}")
    staging = tmp_path / "staging"
    with serve_mirror(root, FaultPlan(cut_after_bytes={NAME: 20_000})) as mirror:
        result = download_archive(
            bdss_archive(mirror.base_url), remote, options=FAST, staging_dir=str(staging)
        )
    assert result.resumed_from == 20_000
    assert remote.read_bytes(result.rel_path) == source(root).read_bytes()
    assert remote.read_json(layout.raw_manifest(WEEK, NAME))["sha256"] == sha256_of(source(root))
    assert list(staging.iterdir()) == []


def test_odp_download_follows_redirect_without_leaking_key(
    root: Path, folder: DataFolder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serve_mirror(root, FaultPlan(cut_after_bytes={NAME: 25_000}), api_key=KEY) as mirror:
        (archive,) = list_odp(WEEK, WEEK, base_url=mirror.base_url, api_key=KEY)
        result = download_archive(
            archive,
            folder,
            options=DownloadOptions(api_key=KEY, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5),
        )
        api_hops = [r for r in mirror.requests if r.path.startswith("/odp-download/")]
        signed = [r for r in mirror.requests if r.path.startswith("/signed/")]
    assert archive.source == "odp" and archive.size == source(root).stat().st_size
    assert all(r.headers.get("X-API-KEY") == KEY for r in api_hops) and len(api_hops) == 2
    assert mirror.signed_key_seen == [False, False]
    assert signed[1].headers["Range"] == "bytes=25000-"
    assert result.sha256 == sha256_of(source(root)) and result.attempts == 2
    manifest_text = Path(folder.path(layout.raw_manifest(WEEK, NAME))).read_text()
    assert KEY not in manifest_text and "sig=" not in manifest_text
    assert KEY not in caplog.text and KEY not in repr(DownloadOptions(api_key=KEY))


def test_api_key_never_goes_to_another_host_the_listing_names(root: Path, folder: DataFolder) -> None:
    """The listing (a loopback API) names a download URI on another host (another port): no key arrives there."""
    with serve_mirror(root, api_key=KEY) as api, serve_mirror(root) as elsewhere:
        api.download_base = elsewhere.base_url
        (archive,) = list_odp(WEEK, WEEK, base_url=api.base_url, api_key=KEY)
        assert archive.url.startswith(elsewhere.base_url)
        result = download_archive(archive, folder, options=DownloadOptions(api_key=KEY, timeout_s=5))
        foreign = list(elsewhere.requests)
    assert result.sha256 == sha256_of(source(root))
    assert [r.path.split("/")[1] for r in foreign] == ["odp-download", "signed"]
    assert not any("X-API-KEY" in r.headers for r in foreign)


def test_listing_redirect_to_another_host_drops_the_api_key(root: Path) -> None:
    with serve_mirror(root, api_key=KEY) as api, serve_mirror(root) as elsewhere:
        api.faults.redirect_listing_to = elsewhere.base_url
        (archive,) = list_odp(WEEK, WEEK, base_url=api.base_url, api_key=KEY)
        foreign = list(elsewhere.requests)
    assert archive.name == NAME and len(foreign) == 1 and "X-API-KEY" not in foreign[0].headers


def test_odp_download_with_wrong_key_names_env_var_not_key(
    root: Path, folder: DataFolder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-0000"
    with serve_mirror(root, api_key=KEY) as mirror:
        api_host = mirror.base_url.split("//")[1]
        archive = WeeklyArchive(WEEK, NAME, f"{mirror.base_url}/odp-download/{NAME}", source="odp", api_host=api_host)
        with pytest.raises(DownloadError, match="USPTO_API_KEY") as info:
            download_archive(archive, folder, options=DownloadOptions(api_key=wrong, timeout_s=5))
    assert wrong not in str(info.value) and KEY not in str(info.value)
    assert wrong not in caplog.text


def test_retry_after_parsing_and_backoff_caps() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    options = DownloadOptions(backoff_base_s=1.0, backoff_max_s=60.0)
    assert backoff_delay(1, options, "600") == 60.0
    assert 1.0 <= backoff_delay(1, options) <= 1.1
    assert 8.0 <= backoff_delay(4, options) <= 8.8
    assert backoff_delay(20, options) == 60.0
