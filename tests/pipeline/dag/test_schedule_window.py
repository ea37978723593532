"""The yearly/weekly schedule's date windows and the release version each window writes (pure date arithmetic)."""

from __future__ import annotations

import datetime as dt

import pytest
from designclip.pipeline.dag.schedule_window import (
    EARLIEST_GRANT,
    ScheduledRun,
    is_empty,
    plan_scheduled_run,
    previous_calendar_year,
    release_version_for,
    since_last_finished,
)
from designclip.pipeline.release.options import check_version

D = dt.date


@pytest.mark.parametrize("today, expected", [
    (D(2025, 1, 2), (D(2024, 1, 1), D(2024, 12, 31))),   # the deployment's day: 2024 is a leap year
    (D(2025, 1, 1), (D(2024, 1, 1), D(2024, 12, 31))),   # Jan 1 itself already means last year
    (D(2024, 12, 31), (D(2023, 1, 1), D(2023, 12, 31))),  # not yet: the year is not over
    (D(2024, 2, 29), (D(2023, 1, 1), D(2023, 12, 31))),
])
def test_previous_calendar_year(today: dt.date, expected: tuple[dt.date, dt.date]) -> None:
    assert previous_calendar_year(today) == expected


def test_previous_calendar_year_counts_the_leap_day() -> None:
    start, end = previous_calendar_year(D(2025, 1, 2))
    assert (end - start).days + 1 == 366
    start, end = previous_calendar_year(D(2026, 1, 2))
    assert (end - start).days + 1 == 365


@pytest.mark.parametrize("finished, today, expected", [
    ([D(2024, 3, 5), D(2024, 2, 27)], D(2024, 3, 10), (D(2024, 3, 6), D(2024, 3, 10))),  # any order: the last one
    ([D(2024, 2, 27)], D(2024, 3, 4), (D(2024, 2, 28), D(2024, 3, 4))),  # leap year: Feb 28 is a day on its own
    ([D(2028, 2, 29)], D(2028, 3, 7), (D(2028, 3, 1), D(2028, 3, 7))),  # a Tuesday Feb 29 grant week
    ([D(2023, 2, 28)], D(2023, 3, 7), (D(2023, 3, 1), D(2023, 3, 7))),
    ([D(2024, 12, 31)], D(2025, 1, 7), (D(2025, 1, 1), D(2025, 1, 7))),  # across New Year
    ([], D(2025, 1, 2), (EARLIEST_GRANT, D(2025, 1, 2))),  # nothing finished: everything
])
def test_since_last_finished(finished: list[dt.date], today: dt.date, expected: tuple[dt.date, dt.date]) -> None:
    assert since_last_finished(finished, today) == expected
    assert not is_empty(expected)


def test_since_last_finished_is_empty_when_up_to_date() -> None:
    assert is_empty(since_last_finished([D(2025, 1, 7)], D(2025, 1, 7)))
    assert not is_empty(since_last_finished([D(2025, 1, 7)], D(2025, 1, 8)))
    assert since_last_finished([], D(2021, 5, 1), earliest=D(2021, 1, 1)) == (D(2021, 1, 1), D(2021, 5, 1))


def test_release_version_for() -> None:
    assert release_version_for(D(2024, 1, 1), D(2024, 12, 31)) == "2024"
    assert release_version_for(D(2023, 1, 1), D(2023, 12, 31)) == "2023"
    assert release_version_for(D(2024, 1, 1), D(2024, 12, 30)) == "20240101-20241230"  # not a whole year
    assert release_version_for(D(2024, 3, 6), D(2025, 1, 2)) == "20240306-20250102"
    assert release_version_for(D(2023, 1, 1), D(2024, 12, 31)) == "20230101-20241231"  # two years: not "2023"
    with pytest.raises(ValueError, match="empty window"):
        release_version_for(D(2025, 1, 8), D(2025, 1, 7))


def test_every_year_gets_its_own_valid_version() -> None:
    versions = [release_version_for(*previous_calendar_year(D(y, 1, 2))) for y in range(2006, 2040)]
    assert len(set(versions)) == len(versions) and versions[0] == "2005"
    assert all(check_version(v) == v for v in versions)


def test_a_window_with_revised_weeks_before_it_runs_them_as_extra_weeks() -> None:
    window = (D(2025, 1, 8), D(2025, 1, 15))
    assert plan_scheduled_run(window, [], "caption") == ScheduledRun(D(2025, 1, 8), D(2025, 1, 15), (), "caption",
                                                                     "20250108-20250115")
    run = plan_scheduled_run(window, [D(2024, 12, 31), D(2024, 12, 10), D(2024, 12, 31)], "release")
    assert run == ScheduledRun(D(2025, 1, 8), D(2025, 1, 15), (D(2024, 12, 10), D(2024, 12, 31)), "release",
                               "20250108-20250115")  # oldest first, once each; the release stays the window's


def test_no_new_week_but_revised_ones_runs_only_those_up_to_caption() -> None:
    empty = (D(2025, 1, 15), D(2025, 1, 14))
    assert plan_scheduled_run(empty, [], "caption") is None
    run = plan_scheduled_run(empty, [D(2024, 12, 31), D(2024, 12, 10)], "release")
    assert (run.start, run.end, run.extra_weeks, run.until) == (D(2024, 12, 10), D(2024, 12, 10),
                                                                (D(2024, 12, 31),), "caption")
    assert plan_scheduled_run(empty, [D(2024, 12, 10)], "render").until == "render"  # never further than asked
