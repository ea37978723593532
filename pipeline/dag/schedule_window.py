"""Which grant dates a scheduled run covers, and which release version it writes (pure date arithmetic)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

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
