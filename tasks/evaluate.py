"""The evaluate task: one model's evaluation on a release as a Prefect task over the EVALUATE driver."""

from __future__ import annotations

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.pipeline.evaluate.driver import EvaluateDriver, EvaluateOptions, EvalUnit
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="evaluate", task_run_name="evaluate-{release}-{tag}", cache_policy=NO_CACHE)
def evaluate_task(data_root: str, release: str, spec: EncoderSpec, tag: str, options: EvaluateOptions) -> UnitResult:
    """One model's evaluation (embeds the missing splits first; a report from the same inputs is skipped)."""
    log = get_run_logger()
    progress = CountProgress(f"deeppatent lists {tag}", None, log, unit="images")  # only the lists report progress
    return EvaluateDriver(log).run(DataFolder(data_root), EvalUnit(release, spec, tag), options, progress)
