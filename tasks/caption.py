"""Prefect task of the caption stage: one task per rendered shard, run by the Prefect-free driver."""

from __future__ import annotations

from designclip.pipeline.caption.driver import CAPTION, CaptionerSpec
from designclip.pipeline.common.stage import UnitResult
from designclip.storage.captions import ShardRef
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="caption-shard", task_run_name="caption-{ref.name}", retries=1, retry_delay_seconds=5,
      cache_policy=NO_CACHE)
def caption_shard(data_root: str, ref: ShardRef, spec: CaptionerSpec) -> UnitResult:
    """Captions of one rendered shard (a retry or rerun resumes after the last checkpoint)."""
    log = get_run_logger()
    progress = CountProgress(f"caption {ref.name}", None, log, unit="views")
    result = CAPTION.run(DataFolder(data_root), ref, spec, progress, log=log)
    log.info("%s: %s %d captions, %d failures", ref.name, "already captioned:" if result.skipped else "wrote",
             result.stats["captioned"], result.stats["failures"])
    return result
