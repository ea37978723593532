"""The embed task: one release shard as a Prefect task over the EMBED driver (the encoder loaded once per process)."""

from __future__ import annotations

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.embed.driver import EmbedDriver, EmbedOptions, EmbedUnit, find_shard
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="embed-shard", task_run_name="embed-{split}-{number:05d}", cache_policy=NO_CACHE)
def embed_shard(data_root: str, release: str, split: str, number: int, options: EmbedOptions) -> UnitResult:
    """Vectors of one release shard (no retries: a rerun skips done shards and redoes this one whole)."""
    log = get_run_logger()
    folder = DataFolder(data_root)
    shard = find_shard(folder, release, split, number)
    progress = CountProgress(f"embed {shard.name}", shard.samples, log, unit="views")
    result = EmbedDriver(log).run(folder, EmbedUnit(release, shard), options, progress)
    fails = sum(len(v) for v in result.stats.get("failures", {}).values())
    log.info("%s: %s %d views, %d failures", shard.name, "already embedded:" if result.skipped else "embedded",
             result.stats.get("samples", 0), fails)
    return result
