"""The DeepPatent flow: ingested weeks -> DeepPatent's images as its lists name them, its lists, a training split,
and the per-FIG. variant from the rendered views."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from designclip.flows.step import Step
from designclip.pipeline.deeppatent.driver import DEEPPATENT, DeepPatentOptions, build_scope
from designclip.pipeline.deeppatent.outputs import finish
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.deeppatent import deeppatent_week
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner


class DeepPatentFailed(RuntimeError):
    """Some weeks failed; finished weeks are kept and the next run builds only the others."""


def deeppatent_markdown(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The Prefect artifact: one row per week, then the totals and what is missing."""
    lines = ["| week | status | listed | written | training sheets | patents with views | MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mib = f"{r['bytes'] / 2**20:.1f}" if "bytes" in r else ""
        views = r.get("views") or {}
        with_views = f"{len(views.get('patents') or {})}/{views['wanted']}" if views.get("wanted") else ""
        lines.append(f"| {r['week']} | {r['status']} | {r.get('listed', '')} | {r.get('listed_written', '')} | "
                     f"{len(r.get('train', []))} | {with_views} | {mib} |")
    return "\n".join([*lines, "", f"Training split: {summary['train_sheets']} sheets of {summary['train_patents']} "
                      f"patents; {summary['summary']}"])


@flow(name="deeppatent", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
def deeppatent_flow(lists: str, data_root: str = layout.DEFAULT_DATA_ROOT,
                    name: str = layout.DEFAULT_DEEPPATENT_NAME, start: dt.date | None = None,
                    end: dt.date | None = None, profile: str = layout.DEFAULT_PROFILE) -> dict[str, Any]:
    """Build every ingested week the lists name or the range covers (finished weeks skipped), then the lists,
    training list, README and missing.json; a week not ingested is reported in missing.json, never skipped silently.
    profile: the render profile whose views make the per-FIG. variant."""
    log = get_run_logger()
    given = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    options = DeepPatentOptions(lists_dir=lists, name=name, profile=profile, **given)
    if options.start > options.end:
        raise ValueError(f"--start {options.start} is after --end {options.end}")
    folder = DataFolder(data_root)
    weeks = DEEPPATENT.units(folder, build_scope(options), options)
    if not weeks:
        raise DeepPatentFailed(f"no ingested week of DeepPatent's lists or of {options.start}..{options.end} under "
                               f"{data_root}: run `designclip ingest --start {options.start} --end {options.end}` "
                               "first")
    log.info("DeepPatent %s: %d ingested weeks to build", name, len(weeks))
    futures = {w: deeppatent_week.submit(data_root, w, options) for w in weeks}
    rows, failed = [], []
    for week, fut in futures.items():
        state = fut.wait() or fut.state
        row: dict[str, Any] = {"week": week.isoformat()}
        if state.is_completed():
            result = fut.result()
            row |= dict(result.stats) | {"status": "skipped (done)" if result.skipped else "done"}
        else:
            row["status"] = "failed"
            failed.append(f"{week}: {state.result(raise_on_failure=False)}")
        rows.append(row)
    summary = finish(folder, options)
    log.info("%s", summary["summary"])
    key = "deeppatent-" + re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    create_markdown_artifact(deeppatent_markdown(summary, rows), key=key, description="DeepPatent rebuild by week")
    if failed:
        raise DeepPatentFailed(f"{len(failed)} of {len(weeks)} weeks failed (rerun to build them):\n"
                               + "\n".join(failed))
    return summary | {"weeks_skipped": sum(r["status"].startswith("skipped") for r in rows),
                      "rows": [_row_counts(r) for r in rows]}


def _row_counts(row: dict[str, Any]) -> dict[str, Any]:
    """A week's row without its path lists (a year's rebuild would return ~400k paths): their counts instead."""
    views = row.get("views") or {}
    return {k: v for k, v in row.items() if k not in ("train", "views")} | {
        "train_sheets": len(row.get("train") or []), "view_patents": len(views.get("patents") or {})}


def deeppatent_step(lists: str, name: str) -> Step:
    """The rebuild as a step of the whole DAG (`designclip run --deeppatent`): over the run's range and render
    profile, called inside the DAG's flow run (its per-week tasks are the DAG's), units = weeks."""
    return Step(call=lambda run: deeppatent_flow.fn(lists, run.data_root, name, start=run.start, end=run.end,
                                                    profile=run.profile.size_profile),
                count=lambda result: (len(result["rows"]), result["weeks_skipped"]),
                where=lambda run, result: result["where"])
