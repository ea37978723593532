"""What a weekly archive is: its week, its file name, where to fetch it, its size when listed."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

ARCHIVE_NAME = re.compile(r"^I(?P<date>\d{8})(?:_r(?P<rev>\d+))?\.(?P<ext>tar|zip|ZIP)$")


@dataclass(frozen=True)
class WeeklyArchive:
    """One weekly grant archive as a listing names it (BDSS directory page or ODP file bag)."""

    week: dt.date
    name: str
    url: str
    size: int | None = None
    revision: int = 0
    source: str = "bdss"


def parse_archive_name(name: str) -> tuple[dt.date, int] | None:
    """`I20251230_r1.tar` -> (2025-12-30, 1); None for names that are not weekly grant archives."""
    m = ARCHIVE_NAME.match(name)
    if not m:
        return None
    try:
        week = dt.datetime.strptime(m["date"], "%Y%m%d").date()
    except ValueError:
        return None
    return week, int(m["rev"] or 0)


def latest_revisions(archives: list[WeeklyArchive]) -> list[WeeklyArchive]:
    """Keep one archive per week, the highest revision (a tar beats a zip at equal revision), sorted by week."""
    best: dict[dt.date, WeeklyArchive] = {}
    for a in archives:
        cur = best.get(a.week)
        rank = (a.revision, a.name.endswith(".tar"))
        if cur is None or rank > (cur.revision, cur.name.endswith(".tar")):
            best[a.week] = a
    return [best[w] for w in sorted(best)]
