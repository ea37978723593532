"""What a weekly archive is: its week, its file name, where to fetch it, its size when listed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from designclip.storage.vocabulary import parse_archive_name

__all__ = ["WeeklyArchive", "latest_revisions", "parse_archive_name"]


@dataclass(frozen=True)
class WeeklyArchive:
    """One weekly grant archive as a listing names it (BDSS directory page or ODP file bag)."""

    week: dt.date
    name: str
    url: str
    size: int | None = None
    revision: int = 0
    source: str = "bdss"
    api_host: str | None = None  # host:port of the API that listed it: the only host (besides ODP's) given the key


def latest_revisions(archives: list[WeeklyArchive]) -> list[WeeklyArchive]:
    """Keep one archive per week, the highest revision (a tar beats a zip at equal revision), sorted by week."""
    best: dict[dt.date, WeeklyArchive] = {}
    for a in archives:
        cur = best.get(a.week)
        rank = (a.revision, a.name.endswith(".tar"))
        if cur is None or rank > (cur.revision, cur.name.endswith(".tar")):
            best[a.week] = a
    return [best[w] for w in sorted(best)]
