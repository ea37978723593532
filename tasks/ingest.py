"""Prefect tasks of the ingest stage: one listing, then one download and one parse task per weekly archive."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.ingest.archive import ArchiveError
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.download import DownloadError, DownloadOptions, TransientDownloadError
from designclip.pipeline.ingest.driver import INGEST, KEEP_RAW, IngestOptions, finished
from designclip.pipeline.ingest.listing import ListingError
from designclip.pipeline.ingest.parse import PARSER_VERSION
from designclip.pipeline.ingest.sources import fetch, list_archives
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import ByteProgress, CountProgress
from prefect import get_run_logger, task
from prefect.context import TaskRunContext

_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _download_slots(limit: int) -> threading.BoundedSemaphore:
    """Bounded download concurrency shared by every download task of this process."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(max(1, limit), threading.BoundedSemaphore(max(1, limit)))


def _retry_unless(permanent: type[Exception], but: type[Exception] | None = None) -> Callable[..., bool]:
    """A retry condition: retry any failure except a `permanent` one (unless it is also a `but` one)."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except Exception as exc:  # noqa: BLE001
            return not isinstance(exc, permanent) or (but is not None and isinstance(exc, but))
        return False

    return condition


@task(name="list-weeks", retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=_retry_unless(ListingError))  # the listing retried its requests itself; the rest is final
def list_weeks(start: dt.date, end: dt.date, source: str, base_url: str | None) -> list[WeeklyArchive]:
    """The weekly archives granted in [start, end], as the source lists them (latest revision per week)."""
    archives = list_archives(start, end, source, base_url)
    get_run_logger().info("%d weekly archives from %s between %s and %s", len(archives), source, start, end)
    return archives


def _download_cache_key(ctx: TaskRunContext, params: dict[str, Any]) -> str | None:
    """Cached across flow runs only once the archive's manifest (written last) exists in the data root."""
    archive: WeeklyArchive = params["archive"]
    folder = DataFolder(params["data_root"])
    rel = layout.raw_manifest(archive.week, archive.name)
    if not folder.exists(rel) or not folder.exists(layout.raw_archive(archive.week, archive.name)):
        return None  # not downloaded, or deleted after its ingest (--keep-raw none): a new download is needed
    digest = hashlib.sha256(repr(folder.read_json(rel)).encode()).hexdigest()[:16]
    return f"download-{archive.name}-{digest}"


@task(
    name="download-week",
    task_run_name="download-{archive.name}",
    retries=2,
    retry_delay_seconds=[30, 120],
    retry_condition_fn=_retry_unless(DownloadError, but=TransientDownloadError),  # bad content stays bad
    cache_key_fn=_download_cache_key,
)
def download_week(archive: WeeklyArchive, data_root: str, options: DownloadOptions | None = None,
                  max_concurrent: int = 2) -> dict[str, Any]:
    """Fetch one weekly archive into `raw/` (resumable, verified); a finished archive is never fetched again."""
    log = get_run_logger()
    with _download_slots(max_concurrent):
        result = fetch(DataFolder(data_root), archive, options or DownloadOptions(), ByteProgress(archive.name, log))
    log.info("%s: %s (%d bytes, sha256 %s)", archive.name, "already downloaded" if result.skipped else "downloaded",
             result.size, result.sha256[:12])
    return asdict(result)


def _ingest_cache_key(ctx: TaskRunContext, params: dict[str, Any]) -> str | None:
    """Cached across flow runs once the week's marker exists for this archive and parser version."""
    archive: WeeklyArchive = params["archive"]
    marker = finished(DataFolder(params["data_root"]), archive)
    if marker is None:
        return None
    return f"ingest-unit-{archive.name}-v{PARSER_VERSION}-{marker.get('finished_at', '')}"


@task(
    name="ingest-week",
    task_run_name="ingest-{archive.name}",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=_retry_unless(ArchiveError),  # an unreadable archive is moved aside
    cache_key_fn=_ingest_cache_key,
)
def ingest_week(archive: WeeklyArchive, data_root: str, download: dict[str, Any] | None = None,
                keep_raw: str = KEEP_RAW[0]) -> UnitResult:
    """Patents, figures, sheets and errors tables for one week; bad members are rows in `errors/`."""
    log = get_run_logger()
    progress = CountProgress(f"ingest {archive.name}", None, log, unit="documents")
    result = INGEST.run(DataFolder(data_root), archive, IngestOptions(keep_raw=keep_raw), progress)
    stats = result.stats
    log.info(
        "%s: %s %d patents, %d figures, %d sheets, %d errors, %d non-design skipped (%.1fs)",
        archive.name, "already ingested:" if result.skipped else "ingested", stats["patents"], stats["figures"],
        stats["sheets"], stats["errors"], stats["skipped_not_design"], stats["duration_s"],
    )
    return result
