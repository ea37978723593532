"""The render flow: ingested weeks -> per-FIG. view images in WebDataset shards, one task per week."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.render import RenderOptions
from storage.folder import DataFolder
from storage.tables import finished_weeks
from tasks.render import render_week, shutdown_pools


class RenderFailed(RuntimeError):
    """Some weeks failed; finished shards are kept and the next run resumes after them."""


def _summary_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| week | status | patents | views | shards | flagged | failures | MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mib = f"{r['bytes'] / 2**20:.1f}" if "bytes" in r else ""
        lines.append(f"| {r['week']} | {r['status']} | {r.get('patents', '')} | {r.get('samples', '')} | "
                     f"{len(r.get('shards', []))} | {r.get('flagged', '')} | {r.get('failures', '')} | {mib} |")
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


@flow(name="render", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
def render_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = "./data",
    size: int = 512,
    margin: float = 0.03,
    workers: int | None = None,
    shard_samples: int = 1000,
    shard_bytes: int = 256 * 2**20,
) -> list[dict[str, Any]]:
    """Render every ingested week granted in [start, end]; finished weeks and shards are skipped."""
    log = get_run_logger()
    if start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    weeks = [w for w in finished_weeks(DataFolder(data_root), "ingest") if start <= w <= end]
    if not weeks:
        raise RenderFailed(f"no ingested weeks between {start} and {end} under {data_root}: "
                           f"run `designclip ingest --start {start} --end {end}` first")
    options = RenderOptions(size=size, margin=margin)
    workers = workers or default_workers()
    log.info("rendering %d weeks at %d px with %d worker process(es)", len(weeks), size, workers)
    futures = {w: render_week.submit(data_root, w, options, workers, shard_samples, shard_bytes) for w in weeks}
    rows, failed = [], []
    try:
        for week, fut in futures.items():
            state = fut.wait() or fut.state
            row: dict[str, Any] = {"week": week.isoformat()}
            if state.is_completed():
                stats = fut.result()
                row |= stats
                row["status"] = "skipped (done)" if stats["skipped"] else "done"
            else:
                row["status"] = "failed"
                error = state.result(raise_on_failure=False)
                failed.append(f"{week}: {error}")
            rows.append(row)
    finally:
        shutdown_pools()
    create_markdown_artifact(_summary_markdown(rows), key="render-summary", description="Render by week")
    if failed:
        raise RenderFailed(f"{len(failed)} of {len(weeks)} weeks failed (rerun to resume them):\n" + "\n".join(failed))
    return rows
