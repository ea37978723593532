"""The train task: one training run as a Prefect task over the TRAIN driver, its logged losses as progress."""

from __future__ import annotations

from typing import Any

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.train.driver import TrainDriver, TrainStageOptions, TrainUnit
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="train", task_run_name="train-{run_name}", cache_policy=NO_CACHE)
def train_task(data_root: str, release: str, run_name: str, options: TrainStageOptions) -> UnitResult:
    """One training run (no retries: a rerun resumes from the last checkpoint); a finished identical run is skipped."""
    log = get_run_logger()
    progress = CountProgress(f"train {run_name}", None, log, unit="steps", every_s=0.0)

    def on_log(row: dict[str, Any]) -> None:
        terms = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("loss"))
        speed = f"lr {row['lr']:.2e}, {row['samples_per_s']} samples/s"
        progress(row["step"], row["total_steps"], extra=f" {terms}, {speed}")

    return TrainDriver(log).run(DataFolder(data_root), TrainUnit(release, run_name), options, on_log=on_log)
