"""Prefect task of the release stage: one release, built by the Prefect-free driver (pipeline/release/driver.py)."""

from __future__ import annotations

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.release.driver import RELEASE
from designclip.pipeline.release.options import ReleaseOptions
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task


@task(name="release", task_run_name="release-{version}")
def release_task(version: str, data_root: str, options: ReleaseOptions) -> UnitResult:
    """One release as a Prefect task (no retries: a failed release is rebuilt from scratch by the next run)."""
    log = get_run_logger()
    progress = CountProgress(f"release {version}", None, log, unit="samples")
    return RELEASE.run(DataFolder(data_root), version, options, progress, log=log)
