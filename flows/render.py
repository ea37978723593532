"""The render flow: ingested weeks -> per-FIG. view images in WebDataset shards, one task per week."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from designclip.pipeline.ingest.driver import ingested_weeks
from designclip.pipeline.render.driver import RenderStageOptions
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.pipeline.render.pool import shutdown_pools
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.render import render_week
from designclip.tasks.runners import task_runner
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner


class RenderFailed(RuntimeError):
    """Some weeks failed; finished shards are kept and the next run resumes after them."""


def render_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| week | status | patents | views | shards | flagged | failures | MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mib = f"{r['bytes'] / 2**20:.1f}" if "bytes" in r else ""
        lines.append(f"| {r['week']} | {r['status']} | {r.get('patents', '')} | {r.get('samples', '')} | "
                     f"{len(r.get('shards', []))} | {r.get('flagged', '')} | {r.get('failures', '')} | {mib} |")
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _fan_out(data_root: str, weeks: list[dt.date],
             options: RenderStageOptions) -> tuple[list[dict[str, Any]], list[str]]:
    """One render task per week on the current flow's task runner; a row per week and the failures."""
    futures = {w: render_week.submit(data_root, w, options) for w in weeks}
    rows, failed = [], []
    try:
        for week, fut in futures.items():
            state = fut.wait() or fut.state
            row: dict[str, Any] = {"week": week.isoformat()}
            if state.is_completed():
                result = fut.result()
                row |= dict(result.stats) | {"skipped": result.skipped}
                row["status"] = "skipped (done)" if result.skipped else "done"
            else:
                row["status"] = "failed"
                error = state.result(raise_on_failure=False)
                failed.append(f"{week}: {error}")
            rows.append(row)
    finally:
        shutdown_pools()
    return rows, failed


@flow(name="render-weeks", log_prints=True)
def render_weeks_flow(data_root: str, weeks: list[dt.date], size: int, margin: float, workers: int,
                      shard_samples: int, shard_bytes: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-week fan-out as a subflow, so it can run on another task runner (a Dask cluster)."""
    options = RenderStageOptions(RenderOptions(size=size, margin=margin), workers, shard_samples, shard_bytes)
    return _fan_out(data_root, weeks, options)


@flow(name="render", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
def render_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    size: int = 512,
    margin: float = 0.03,
    workers: int | None = None,
    shard_samples: int = layout.DEFAULT_SHARD_SAMPLES,
    shard_bytes: int = layout.DEFAULT_SHARD_BYTES,
    runner: str = "local",
    dask_address: str | None = None,
    dask_workers: int | None = None,
) -> list[dict[str, Any]]:
    """Render every ingested week granted in [start, end]; finished weeks and shards are skipped."""
    log = get_run_logger()
    if start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    runs_on = None if runner == "local" and not dask_address else task_runner(runner, dask_address, dask_workers)
    weeks = ingested_weeks(DataFolder(data_root), start, end)
    if not weeks:
        raise RenderFailed(f"no ingested weeks between {start} and {end} under {data_root}: "
                           f"run `designclip ingest --start {start} --end {end}` first")
    if runs_on is None:
        workers = workers or default_workers()
        log.info("rendering %d weeks at %d px with %d worker process(es)", len(weeks), size, workers)
        options = RenderStageOptions(RenderOptions(size=size, margin=margin), workers, shard_samples, shard_bytes)
        rows, failed = _fan_out(data_root, weeks, options)
    else:
        # Dask worker processes are daemons (no child processes): one render process per week task by default;
        # the cluster's workers are the parallelism.
        workers = workers or 1
        log.info("rendering %d weeks at %d px on %s (%s), %d render process(es) per week", len(weeks), size,
                 runner, dask_address or f"a local cluster of {dask_workers or 'one worker per CPU'}", workers)
        rows, failed = render_weeks_flow.with_options(task_runner=runs_on)(
            data_root, weeks, size, margin, workers, shard_samples, shard_bytes)
    create_markdown_artifact(render_markdown(rows), key="render-summary", description="Render by week")
    if failed:
        raise RenderFailed(f"{len(failed)} of {len(weeks)} weeks failed (rerun to resume them):\n" + "\n".join(failed))
    return rows
