"""The index tasks: one index (image or text vectors of a release by a model), or one release appended to a grown
index, as Prefect tasks over the Prefect-free drivers."""

from __future__ import annotations

from designclip.pipeline.common.stage import UnitResult
from designclip.pipeline.index.append import AppendDriver, GrownUnit
from designclip.pipeline.index.driver import IndexDriver, IndexOptions, IndexUnit
from designclip.storage.folder import DataFolder
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


@task(name="index", task_run_name="index-{kind}", cache_policy=NO_CACHE)
def index_task(data_root: str, release: str, model_tag: str, kind: str, options: IndexOptions) -> UnitResult:
    """Plan, build, tune and write one index; an unchanged index is kept (skipped)."""
    unit = IndexUnit(release, model_tag, kind)
    return IndexDriver(get_run_logger()).run(DataFolder(data_root), unit, options)


@task(name="index-append", task_run_name="index-append-{release}-{kind}", cache_policy=NO_CACHE)
def index_append_task(data_root: str, name: str, release: str, model_tag: str, kind: str,
                      options: IndexOptions) -> UnitResult:
    """Append one kind of a release's vectors to the grown index (a release held already: a no-op, skipped)."""
    unit = GrownUnit(name, release, model_tag, kind)
    return AppendDriver(get_run_logger()).run(DataFolder(data_root), unit, options)
