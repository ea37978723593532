"""Prefect task of the render stage: one task per ingested week, patents rendered by a shared process pool."""

from __future__ import annotations

import datetime as dt

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.render.driver import RENDER, RenderStageOptions
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task


@task(name="render-week", task_run_name="render-{week}", retries=1, retry_delay_seconds=5)
def render_week(data_root: str, week: dt.date, options: RenderStageOptions) -> UnitResult:
    """Per-FIG. views of one week as WebDataset shards (resumes after the last finished shard)."""
    log, folder = get_run_logger(), DataFolder(data_root)
    result = RENDER.run(folder, week, options, CountProgress(f"render {layout.week_id(week)}", None, log))
    stats = result.stats
    log.info("%s: %s %d views of %d patents in %d shards, %d flagged, %d failures", layout.week_id(week),
             "already rendered:" if result.skipped else "rendered", stats["samples"], stats["patents"],
             len(stats["shards"]), stats["flagged"], stats["failures"])
    return result
