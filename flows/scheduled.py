"""The flows the deployments in prefect.yaml run: pick the grant-date window, re-list the weeks just before it for
revised archives, then run the DAG on the window plus those revised weeks."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

from designclip.pipeline.dag.schedule_window import (
    Window,
    plan_scheduled_run,
    previous_calendar_year,
    since_last_finished,
)
from designclip.pipeline.ingest.revisions import RELIST_WEEKS, Revision, find_revisions
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import finished_weeks
from designclip.tasks.ingest import list_weeks
from prefect import flow, get_run_logger

Mode = Literal["previous-year", "since-last"]
Until = Literal["ingest", "render", "caption", "release", "train", "index", "evaluate"]


def resolve_data_root(data_root: str | None) -> str:
    """A deployment leaves data_root unset so each worker's DESIGNCLIP_DATA_ROOT (e.g. s3://designclip/data) wins."""
    return data_root or os.environ.get("DESIGNCLIP_DATA_ROOT", layout.DEFAULT_DATA_ROOT)


def window_for(mode: Mode, data_root: str, today: dt.date) -> Window:
    """The grant dates a run covers: the previous calendar year, or everything after the last ingested week."""
    if mode == "previous-year":
        return previous_calendar_year(today)
    if mode == "since-last":
        return since_last_finished(finished_weeks(DataFolder(data_root), "ingest"), today)
    raise ValueError(f"mode {mode!r}: use previous-year or since-last")


def revisions_before(window: Window, data_root: str, source: str, base_url: str | None,
                     relist_weeks: int) -> list[Revision]:
    """Finished weeks in the `relist_weeks` before the window that the source now lists in a newer revision.

    A listing that fails only warns: the window still runs, and the next run re-lists the same weeks again.
    """
    try:
        return find_revisions(DataFolder(data_root), window[0], lambda s, e: list_weeks(s, e, source, base_url),
                              relist_weeks)
    except Exception as exc:  # noqa: BLE001 - the window's own weeks must not wait for an older week's revision
        get_run_logger().warning("re-listing the %d weeks before %s failed (%s); revised archives are looked for "
                                 "again on the next run", relist_weeks, window[0], exc)
        return []


def run_window(window: Window, data_root: str, until: str, source: str, base_url: str | None,
               options: dict[str, Any] | None, relist_weeks: int = RELIST_WEEKS) -> dict[str, Any]:
    """The DAG on one window and the revised weeks before it, writing the window's own release version.

    `options` are more `pipeline_flow` keyword arguments (max_downloads, run, profile, ...). Revised weeks go to
    the DAG as `extra_weeks` (only when there are some): their data stages run again.
    """
    log = get_run_logger()
    start, end = window
    revisions = revisions_before(window, data_root, source, base_url, relist_weeks)
    revised = [r.record() for r in revisions]
    plan = plan_scheduled_run(window, [r.week for r in revisions], until)
    if plan is None:
        log.info("nothing new: the last finished week is %s, today is %s; no revised archive in the %d weeks before",
                 start - dt.timedelta(days=1), end, relist_weeks)
        return {"start": start.isoformat(), "end": end.isoformat(), "status": "nothing new", "revised": []}
    log.info("grant dates %s .. %s up to %s; release version %s; data root %s", plan.start, plan.end, plan.until,
             plan.release, data_root)
    extra = {"extra_weeks": list(plan.extra_weeks)} if plan.extra_weeks else {}
    if plan.extra_weeks:
        log.info("revised weeks before the window, ingested, rendered and captioned again: %s",
                 ", ".join(f"{r['week']} ({r['from']} -> {r['to']})" for r in revised))
    from designclip.flows.pipeline import pipeline_flow

    result = pipeline_flow(start=plan.start, end=plan.end, data_root=data_root, until=plan.until, source=source,
                           base_url=base_url, release=plan.release, **extra, **(options or {}))
    return {"start": plan.start.isoformat(), "end": plan.end.isoformat(), "release": plan.release,
            "until": plan.until, "status": "done", "revised": revised, "result": result}


@flow(name="yearly", log_prints=True)
def yearly_flow(data_root: str | None = None, mode: Mode = "previous-year", today: dt.date | None = None,
                until: Until = "release", source: str = "bdss", base_url: str | None = None,
                options: dict[str, Any] | None = None, relist_weeks: int = RELIST_WEEKS) -> dict[str, Any]:
    """Once a year: the previous calendar year (or everything since the last finished week) and its release,
    plus any week of the `relist_weeks` before it that was republished as a revision (0: do not re-list)."""
    root = resolve_data_root(data_root)
    return run_window(window_for(mode, root, today or dt.date.today()), root, until, source, base_url, options,
                      relist_weeks)


@flow(name="weekly", log_prints=True)
def weekly_flow(data_root: str | None = None, today: dt.date | None = None, until: Until = "caption",
                source: str = "bdss", base_url: str | None = None,
                options: dict[str, Any] | None = None, relist_weeks: int = RELIST_WEEKS) -> dict[str, Any]:
    """Every week: the weeks published since the last finished one, up to captions (releases stay yearly), plus
    any week of the `relist_weeks` before them that was republished as a revision (0: do not re-list)."""
    root = resolve_data_root(data_root)
    return run_window(window_for("since-last", root, today or dt.date.today()), root, until, source, base_url,
                      options, relist_weeks)
