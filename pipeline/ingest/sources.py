"""Where weekly archives come from: the source's listing, a verified download into raw/, or the user's own file.

Also a week's failure record (for `designclip status`): written when its download or parse fails, removed when the
week finishes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from urllib.parse import urlparse
from urllib.request import url2pathname

from designclip.pipeline.common.stage import Progress
from designclip.pipeline.ingest.archives import WeeklyArchive, latest_revisions, parse_archive_name
from designclip.pipeline.ingest.download import DownloadOptions, DownloadResult, download_archive
from designclip.pipeline.ingest.ledger import ODP_DOWNLOADS_PER_YEAR
from designclip.pipeline.ingest.listing import list_bdss, list_odp
from designclip.storage import layout
from designclip.storage.folder import DataFolder

STAGE = "ingest"


def list_archives(start: dt.date, end: dt.date, source: str, base_url: str | None) -> list[WeeklyArchive]:
    """The weekly archives granted in [start, end], as the source lists them (latest revision per week)."""
    if source == "bdss":
        return list_bdss(start, end, base_url=base_url or "https://bulkdata.uspto.gov")
    if source == "odp":
        return list_odp(start, end, base_url=base_url or "https://api.uspto.gov")
    raise ValueError(f"unknown source {source!r}: use bdss or odp")


def fetch(folder: DataFolder, archive: WeeklyArchive, options: DownloadOptions, progress: Progress) -> DownloadResult:
    """Download one archive into raw/ (resumable, verified; a finished one is kept); a failure is recorded."""
    try:
        return download_archive(archive, folder, options=options, on_progress=progress)
    except Exception as exc:
        record_failure(folder, archive, f"download: {exc}")  # `designclip status` shows it; removed on success
        raise


def local_path(archive: WeeklyArchive) -> str | None:
    """The user's own file for an archive given on the command line (read in place, never moved); else None."""
    return url2pathname(urlparse(archive.url).path) if archive.source == "local" else None


@contextlib.contextmanager
def readable_copy(folder: DataFolder, rel: str) -> Iterator[str]:
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


def quarantine(folder: DataFolder, archive: WeeklyArchive) -> str:
    """Move a bad download aside (manifest first) so the next run fetches it again; returns the new name."""
    raw_rel = layout.raw_archive(archive.week, archive.name)
    folder.remove(layout.raw_manifest(archive.week, archive.name))
    if folder.exists(raw_rel):
        folder.rename(raw_rel, raw_rel + ".corrupt")
    return raw_rel + ".corrupt"


def downloaded_archives(folder: DataFolder, start: dt.date, end: dt.date) -> list[WeeklyArchive]:
    """Archives in raw/ whose manifest (written last) exists, granted in [start, end], latest revision per week."""
    found = []
    for year in range(start.year, end.year + 1):
        year_dir = layout.raw_archive(dt.date(year, 1, 1), "").rstrip("/")
        for rel in folder.list(year_dir, ".json"):
            name = rel.rsplit("/", 1)[-1].removesuffix(".json")
            parsed = parse_archive_name(name)
            if parsed is None or not start <= parsed[0] <= end or not folder.exists(rel.removesuffix(".json")):
                continue
            manifest = folder.read_json(rel)
            found.append(WeeklyArchive(week=parsed[0], name=name, url=str(manifest.get("url", "")),
                                       size=manifest.get("size"), revision=parsed[1],
                                       source=str(manifest.get("source", "bdss"))))
    return latest_revisions(found)


def record_failure(folder: DataFolder, archive: WeeklyArchive, error: str) -> None:
    """The week's last failure, for `designclip status`; the week's next success removes it."""
    folder.write_json(layout.failure_record(STAGE, archive.week),
                      {"week": archive.week.isoformat(), "archive": archive.name, "error": error,
                       "at": dt.datetime.now(dt.UTC).isoformat()})


def clear_failure(folder: DataFolder, week: dt.date) -> None:
    """A finished week has no failure to show any more."""
    folder.remove(layout.failure_record(STAGE, week))


ODP_429_MIN_DELAY_S = 5.0
"""The Open Data Portal asks clients to wait at least this long after an HTTP 429."""


def download_policy(source: str, max_downloads: int | None, limit: int | None) -> tuple[int, DownloadOptions]:
    """(concurrent downloads, download options) for a source: the Open Data Portal allows no parallel requests per
    key, wants >= 5 s after a 429 and counts downloads per file and year; a bulk mirror is only asked to be polite."""
    if source == "odp":
        return (max_downloads or 1,
                DownloadOptions(max_per_year=limit or ODP_DOWNLOADS_PER_YEAR, min_delay_429_s=ODP_429_MIN_DELAY_S))
    return max_downloads or 2, DownloadOptions(max_per_year=limit)
