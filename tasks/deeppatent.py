"""Prefect task of the DeepPatent rebuild: one task per ingested week, written by the Prefect-free driver."""

from __future__ import annotations

import datetime as dt

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.deeppatent.driver import DEEPPATENT, DeepPatentOptions
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task


@task(name="deeppatent-week", task_run_name="deeppatent-{week}", retries=1, retry_delay_seconds=5)
def deeppatent_week(data_root: str, week: dt.date, options: DeepPatentOptions) -> UnitResult:
    """One week's listed and training sheets as PNGs (whole PNGs of a killed run are kept), then its marker."""
    log = get_run_logger()
    progress = CountProgress(f"deeppatent {layout.week_id(week)}", None, log, unit="sheets")
    result = DEEPPATENT.run(DataFolder(data_root), week, options, progress)
    stats = result.stats
    log.info("%s: %s %d of %d listed sheets, %d training sheets, %d listed missing", layout.week_id(week),
             "already built:" if result.skipped else "wrote", stats["listed_written"], stats["listed"],
             len(stats["train"]), len(stats["missing"]))
    return result
