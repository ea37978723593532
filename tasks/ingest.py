"""Prefect tasks of the ingest stage: one listing, then one download and one parse task per weekly archive."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from designclip.pipeline.ingest.archive import ArchiveError
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.download import DownloadError, DownloadOptions, TransientDownloadError, download_archive
from designclip.pipeline.ingest.listing import list_bdss, list_odp
from designclip.pipeline.ingest.parse import PARSER_VERSION
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_marker, write_marker
from designclip.tasks.progress import ByteProgress
from prefect import get_run_logger, task
from prefect.context import TaskRunContext

STAGE = "ingest"
_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _download_slots(limit: int) -> threading.BoundedSemaphore:
    """Bounded download concurrency shared by every download task of this process."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(max(1, limit), threading.BoundedSemaphore(max(1, limit)))


@task(name="list-weeks", retries=2, retry_delay_seconds=[2, 10])
def list_weeks(start: dt.date, end: dt.date, source: str, base_url: str | None) -> list[WeeklyArchive]:
    """The weekly archives granted in [start, end], as the source lists them (latest revision per week)."""
    if source == "bdss":
        archives = list_bdss(start, end, base_url=base_url or "https://bulkdata.uspto.gov")
    elif source == "odp":
        archives = list_odp(start, end, base_url=base_url or "https://api.uspto.gov")
    else:
        raise ValueError(f"unknown source {source!r}: use bdss or odp")
    get_run_logger().info("%d weekly archives from %s between %s and %s", len(archives), source, start, end)
    return archives


def _download_cache_key(ctx: TaskRunContext, params: dict[str, Any]) -> str | None:
    """Cached across flow runs only once the archive's manifest (written last) exists in the data root."""
    archive: WeeklyArchive = params["archive"]
    folder = DataFolder(params["data_root"])
    rel = layout.raw_manifest(archive.week, archive.name)
    if not folder.exists(rel):
        return None
    digest = hashlib.sha256(repr(folder.read_json(rel)).encode()).hexdigest()[:16]
    return f"download-{archive.name}-{digest}"


def _is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry network trouble; never retry bad content (an HTML page stays an HTML page)."""
    try:
        state.result()
    except TransientDownloadError:
        return True
    except DownloadError:
        return False
    except Exception:  # noqa: BLE001
        return True
    return False


@task(
    name="download-week",
    task_run_name="download-{archive.name}",
    retries=2,
    retry_delay_seconds=[30, 120],
    retry_condition_fn=_is_transient,
    cache_key_fn=_download_cache_key,
)
def download_week(archive: WeeklyArchive, data_root: str, options: DownloadOptions | None = None,
                  max_concurrent: int = 2) -> dict[str, Any]:
    """Fetch one weekly archive into `raw/` (resumable, verified); a finished archive is never fetched again."""
    log = get_run_logger()
    folder = DataFolder(data_root)
    try:
        with _download_slots(max_concurrent):
            result = download_archive(archive, folder, options=options or DownloadOptions(),
                                      on_progress=ByteProgress(archive.name, log))
    except Exception as exc:
        record_failure(folder, archive, f"download: {exc}")  # `designclip status` shows it; removed on success
        raise
    log.info("%s: %s (%d bytes, sha256 %s)", archive.name, "already downloaded" if result.skipped else "downloaded",
             result.size, result.sha256[:12])
    return asdict(result)


def _ingest_cache_key(ctx: TaskRunContext, params: dict[str, Any]) -> str | None:
    """Cached across flow runs once the week's stats marker exists for this archive and parser version."""
    archive: WeeklyArchive = params["archive"]
    marker = read_marker(DataFolder(params["data_root"]), STAGE, archive.week)
    if not marker or marker.get("source_archive") != archive.name or marker.get("parser_version") != PARSER_VERSION:
        return None
    return f"ingest-{archive.name}-v{PARSER_VERSION}-{marker.get('finished_at', '')}"


@contextlib.contextmanager
def _local_archive(folder: DataFolder, rel: str) -> Iterator[str]:
    """A local path to read the archive from (a temporary copy when the data root is remote)."""
    if folder.is_local:
        yield folder.path(rel)
        return
    tmpdir = tempfile.mkdtemp(prefix="designclip-")
    try:
        local = os.path.join(tmpdir, rel.rsplit("/", 1)[-1])
        folder.fs.get_file(folder.path(rel), local)
        yield local
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def record_failure(folder: DataFolder, archive: WeeklyArchive, error: str) -> None:
    """The week's last failure, for `designclip status`; the week's next success removes it."""
    folder.write_json(layout.failure_record(STAGE, archive.week),
                      {"week": archive.week.isoformat(), "archive": archive.name, "error": error,
                       "at": dt.datetime.now(dt.UTC).isoformat()})


def ingest_week_archive(archive: WeeklyArchive, data_root: str, archive_path: str | None = None) -> dict[str, Any]:
    """Parse one downloaded archive into the week's tables, then write its marker; skip a finished week."""
    folder = DataFolder(data_root)
    marker = read_marker(folder, STAGE, archive.week)
    if marker and marker.get("source_archive") == archive.name and marker.get("parser_version") == PARSER_VERSION:
        folder.remove(layout.failure_record(STAGE, archive.week))  # a retried download's record is stale now
        return {**marker, "skipped": True}
    raw_rel = layout.raw_archive(archive.week, archive.name)
    source = contextlib.nullcontext(archive_path) if archive_path else _local_archive(folder, raw_rel)
    try:
        with source as path, WeekWriter(folder, archive.week, archive.name) as sink:
            stats = ingest_archive(path, archive.name, archive.week, sink)
    except ArchiveError as exc:
        if not archive_path:
            # Quarantine the bad download so the next run fetches it again instead of failing forever.
            folder.remove(layout.raw_manifest(archive.week, archive.name))
            if folder.exists(raw_rel):
                folder.rename(raw_rel, raw_rel + ".corrupt")
        record_failure(folder, archive, str(exc))
        then = (f"it was moved aside as {raw_rel}.corrupt and will be downloaded again on the next run"
                if not archive_path else f"replace {archive_path} with a good copy and ingest it again")
        raise ArchiveError(f"week {archive.week}: {archive.name} is unreadable ({exc}); {then}") from exc
    result = stats.to_dict() | {"finished_at": dt.datetime.now(dt.UTC).isoformat()}
    write_marker(folder, STAGE, archive.week, result)
    folder.remove(layout.failure_record(STAGE, archive.week))
    return {**result, "skipped": False}


def _not_bad_data(task: Any, task_run: Any, state: Any) -> bool:
    """Retry storage hiccups; an unreadable archive is moved aside and fails fast instead."""
    try:
        state.result()
    except ArchiveError:
        return False
    except Exception:  # noqa: BLE001
        return True
    return False


@task(
    name="ingest-week",
    task_run_name="ingest-{archive.name}",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=_not_bad_data,
    cache_key_fn=_ingest_cache_key,
)
def ingest_week(archive: WeeklyArchive, data_root: str, download: dict[str, Any] | None = None,
                archive_path: str | None = None) -> dict[str, Any]:
    """Patents, figures, sheets and errors tables for one week; bad members are rows in `errors/`."""
    stats = ingest_week_archive(archive, data_root, archive_path)
    get_run_logger().info(
        "%s: %s %d patents, %d figures, %d sheets, %d errors, %d non-design skipped (%.1fs)",
        archive.name, "already ingested:" if stats["skipped"] else "ingested", stats["patents"], stats["figures"],
        stats["sheets"], stats["errors"], stats["skipped_not_design"], stats["duration_s"],
    )
    return stats
