"""Revised weekly archives: which finished weeks the source now lists in a newer revision (`_r1`, `_r2`, ...).

The USPTO republishes a weekly file as `I20210105_r1.tar` up to several weeks after the original, and its listing is
not date-sorted, so a scheduled run that only looks after its last finished week never sees them. Each scheduled run
re-lists the weeks just before its window and hands the revised ones to the DAG; re-ingesting one forgets that week's
views and captions (pipeline/ingest/driver.py), and its ingest marker keeps `revised_from` for the release card.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from designclip.pipeline.ingest.archives import WeeklyArchive, latest_revisions, parse_archive_name
from designclip.pipeline.ingest.driver import ingested_weeks, week_marker
from designclip.storage.folder import DataFolder

log = logging.getLogger(__name__)

RELIST_WEEKS = 8
"""How many weeks before its window a scheduled run re-lists: revisions appear up to several weeks late."""

Lister = Callable[[dt.date, dt.date], list[WeeklyArchive]]
"""(start, end) -> the weekly archives the source lists in [start, end] (e.g. sources.list_archives)."""


@dataclass(frozen=True)
class Revision:
    """A finished week the source now publishes in a newer revision than the archive it was ingested from."""

    week: dt.date
    ingested: str  # the archive the week's tables come from, e.g. I20210105.tar
    listed: str  # the newer revision the source lists, e.g. I20210105_r1.tar

    def record(self) -> dict[str, str]:
        return {"week": self.week.isoformat(), "from": self.ingested, "to": self.listed}


def relist_span(window_start: dt.date, weeks: int = RELIST_WEEKS) -> tuple[dt.date, dt.date] | None:
    """The `weeks` weeks just before a window that starts on `window_start`; None when re-listing is off (0)."""
    if weeks < 0:
        raise ValueError(f"relist weeks {weeks}: use 0 (off) or more")
    if weeks == 0:
        return None
    return window_start - dt.timedelta(weeks=weeks), window_start - dt.timedelta(days=1)


def ingested_archives(folder: DataFolder, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """Finished weeks in [start, end] -> the archive each was ingested from (markers that name none are left out)."""
    found = {}
    for week in ingested_weeks(folder, start, end):
        name = (week_marker(folder, week).read() or {}).get("source_archive")
        if name:
            found[week] = str(name)
    return found


def _revision_of(name: str) -> int:
    """`I20210105_r2.tar` -> 2; an original, or a name that is no weekly archive (ipg210105.xml), counts as 0."""
    parsed = parse_archive_name(name)
    return parsed[1] if parsed else 0


def newer_revisions(ingested: dict[dt.date, str], listed: Iterable[WeeklyArchive]) -> list[Revision]:
    """Weeks whose latest listed archive has a higher revision than the one ingested, oldest first.

    Weeks that were never finished are not revisions (`designclip rerun --failed` retries those); a listing that
    lost a revision, or shows an older one, changes nothing.
    """
    found = []
    for archive in latest_revisions(list(listed)):
        old = ingested.get(archive.week)
        if old is not None and archive.name != old and archive.revision > _revision_of(old):
            found.append(Revision(archive.week, old, archive.name))
    return found


def find_revisions(folder: DataFolder, window_start: dt.date, lister: Lister,
                   weeks: int = RELIST_WEEKS) -> list[Revision]:
    """Finished weeks in the `weeks` before `window_start` that the source now lists in a newer revision.

    Lists nothing when re-listing is off or no week in that span is finished (a first run, a fresh data root).
    """
    span = relist_span(window_start, weeks)
    if span is None:
        return []
    ingested = ingested_archives(folder, *span)
    if not ingested:
        return []
    revisions = newer_revisions(ingested, lister(*span))
    for r in revisions:
        log.warning("week %s was ingested from %s; the source now lists %s: it is ingested, rendered and captioned "
                    "again", r.week, r.ingested, r.listed)
    log.info("re-listed %s .. %s: %d finished weeks, %d revised", span[0], span[1], len(ingested), len(revisions))
    return revisions


def revised_weeks(folder: DataFolder, weeks: Iterable[dt.date]) -> list[dict[str, Any]]:
    """Of `weeks`, those whose tables come from a revision that replaced an earlier archive (the ingest marker's
    `revised_from`), oldest first, as {"week", "from", "to"} for a release's card and stats."""
    found = []
    for week in sorted(set(weeks)):
        marker = week_marker(folder, week).read() or {}
        if marker.get("revised_from"):
            found.append({"week": week.isoformat(), "from": str(marker["revised_from"]),
                          "to": str(marker.get("source_archive", ""))})
    return found
