"""Which grant dates a scheduled run covers, and which release version it writes (pure date arithmetic)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from designclip.pipeline.dag.stages import DATA_STAGES, STAGES

# The parser reads the `us-patent-grant` XML (ICE v4) the USPTO has published since January 2005.
EARLIEST_GRANT = dt.date(2005, 1, 1)

Window = tuple[dt.date, dt.date]


def previous_calendar_year(today: dt.date) -> Window:
    """January 1 to December 31 of the year before `today` (the yearly run on 2025-01-02 covers 2024)."""
    year = today.year - 1
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def since_last_finished(finished_weeks: Iterable[dt.date], today: dt.date,
                        earliest: dt.date = EARLIEST_GRANT) -> Window:
    """The day after the last finished week up to `today`; everything from `earliest` when nothing is finished.

    The window is empty (start > end) when the last finished week is today or later: nothing new to fetch.
    Weeks that failed before the last finished one are not in the window; `designclip rerun --failed` retries them.
    """
    last = max(finished_weeks, default=None)
    start = earliest if last is None else last + dt.timedelta(days=1)
    return start, today


def is_empty(window: Window) -> bool:
    start, end = window
    return start > end


def release_version_for(start: dt.date, end: dt.date) -> str:
    """A version named after the window, so a new window never reuses (and never overwrites) an earlier release.

    A whole calendar year is its year ("2024"); any other window is its dates ("20240306-20250102"). The same
    window gives the same version, so rerunning a run is a no-op release, and releases are immutable anyway.
    """
    if start > end:
        raise ValueError(f"empty window {start} .. {end}: nothing to release")
    if start == dt.date(start.year, 1, 1) and end == dt.date(start.year, 12, 31):
        return f"{start.year}"
    return f"{start:%Y%m%d}-{end:%Y%m%d}"


@dataclass(frozen=True)
class ScheduledRun:
    """What one scheduled run hands the DAG: its window, the revised weeks outside it, how far it goes."""

    start: dt.date
    end: dt.date
    extra_weeks: tuple[dt.date, ...]  # finished weeks republished as a newer revision: their data stages run again
    until: str
    release: str


def plan_scheduled_run(window: Window, revised: Iterable[dt.date], until: str) -> ScheduledRun | None:
    """The DAG call for a window plus the revised weeks found before it; None when there is nothing to do.

    With new weeks, the run covers its window up to `until` and the revised weeks as extra weeks (the release, when
    asked for, stays the window's). With no new week but revised ones, it re-ingests, renders and captions those
    (at most up to caption: a revision alone writes no release; the next release picks the week up).
    """
    start, end = window
    weeks = sorted(set(revised))
    if not is_empty(window):
        extra = tuple(w for w in weeks if not start <= w <= end)
        return ScheduledRun(start, end, extra, until, release_version_for(start, end))
    if not weeks:
        return None
    first, *rest = weeks
    data_until = until if STAGES.index(until) <= STAGES.index(DATA_STAGES[-1]) else DATA_STAGES[-1]
    return ScheduledRun(first, first, tuple(rest), data_until, release_version_for(first, first))
