"""How often each weekly file was downloaded: the Open Data Portal counts at most 20 downloads of one file per API
key per year, so a re-download past the limit is refused with the reason instead of burning the key's quota.

One small JSON per file (`raw/YYYY/<name>.downloads.json`: the download dates), so parallel downloads of different
weeks never write the same ledger file.
"""

from __future__ import annotations

import datetime as dt

from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.storage import layout
from designclip.storage.folder import DataFolder

ODP_DOWNLOADS_PER_YEAR = 20
"""The Open Data Portal's limit on downloads of one file per API key per year."""


class DownloadLimitReached(Exception):
    """The file was downloaded as often in the last year as the limit allows; the message says what to do."""


def _dates(folder: DataFolder, archive: WeeklyArchive) -> list[str]:
    rel = layout.download_ledger(archive.week, archive.name)
    return list(folder.read_json(rel).get("downloads", [])) if folder.exists(rel) else []


def downloads_last_year(folder: DataFolder, archive: WeeklyArchive, today: dt.date | None = None) -> int:
    """Downloads of this file recorded in the 365 days up to `today`."""
    since = (today or dt.date.today()) - dt.timedelta(days=365)
    return sum(1 for d in _dates(folder, archive) if dt.date.fromisoformat(d[:10]) > since)


def check_limit(folder: DataFolder, archive: WeeklyArchive, limit: int | None, today: dt.date | None = None) -> None:
    """Refuse one more download of `archive` when `limit` downloads in the last year are already recorded."""
    if limit is None:
        return
    done = downloads_last_year(folder, archive, today)
    if done >= limit:
        raise DownloadLimitReached(
            f"week {archive.week}: {archive.name} was downloaded {done} times in the last year, the limit is {limit} "
            f"(the Open Data Portal allows {ODP_DOWNLOADS_PER_YEAR} per file per key per year); keep archives with "
            f"--keep-raw all, or raise --download-limit if your quota allows it")


def record_download(folder: DataFolder, archive: WeeklyArchive, when: dt.datetime | None = None) -> None:
    """Add one finished download of `archive` to its ledger (written atomically)."""
    dates = [*_dates(folder, archive), (when or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")]
    folder.write_json(layout.download_ledger(archive.week, archive.name),
                      {"name": archive.name, "source": archive.source, "downloads": dates})
