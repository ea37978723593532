"""The flows the deployments in prefect.yaml run: pick the grant-date window, then run the DAG on it."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

from designclip.pipeline.dag.schedule_window import (
    Window,
    is_empty,
    previous_calendar_year,
    release_version_for,
    since_last_finished,
)
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import finished_weeks
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


def run_window(window: Window, data_root: str, until: str, source: str, base_url: str | None,
               options: dict[str, Any] | None) -> dict[str, Any]:
    """The DAG on one window, writing the window's own release version (never an earlier one).

    `options` are more `pipeline_flow` keyword arguments (max_downloads, run, profile, ...).
    """
    log = get_run_logger()
    start, end = window
    if is_empty(window):
        log.info("nothing new: the last finished week is %s, today is %s", start - dt.timedelta(days=1), end)
        return {"start": start.isoformat(), "end": end.isoformat(), "status": "nothing new"}
    release = release_version_for(start, end)
    log.info("grant dates %s .. %s up to %s; release version %s; data root %s", start, end, until, release,
             data_root)
    from designclip.flows.pipeline import pipeline_flow

    result = pipeline_flow(start=start, end=end, data_root=data_root, until=until, source=source,
                           base_url=base_url, release=release, **(options or {}))
    return {"start": start.isoformat(), "end": end.isoformat(), "release": release, "until": until,
            "status": "done", "result": result}


@flow(name="yearly", log_prints=True)
def yearly_flow(data_root: str | None = None, mode: Mode = "previous-year", today: dt.date | None = None,
                until: Until = "release", source: str = "bdss", base_url: str | None = None,
                options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Once a year: the previous calendar year (or everything since the last finished week) and its release."""
    root = resolve_data_root(data_root)
    return run_window(window_for(mode, root, today or dt.date.today()), root, until, source, base_url, options)


@flow(name="weekly", log_prints=True)
def weekly_flow(data_root: str | None = None, today: dt.date | None = None, until: Until = "caption",
                source: str = "bdss", base_url: str | None = None,
                options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every week: the weeks published since the last finished one, up to captions (releases stay yearly)."""
    root = resolve_data_root(data_root)
    return run_window(window_for("since-last", root, today or dt.date.today()), root, until, source, base_url,
                      options)
