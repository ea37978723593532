"""The whole DAG: ingest -> render -> caption -> [deeppatent] -> release -> train -> embed/index -> evaluate.

The data stages stream per week (flows/weekly.py): each week is downloaded, ingested, rendered and captioned as soon
as its input exists, as tasks of this flow with a bound per stage. Release waits for the whole range; then each
later stage runs through the `STEP` its flow module declares (how to call it, how many units it had, where its
outputs are), in the order of the stage registry. Stages exchange nothing but files under the data root, and each
skips its finished units by their done markers, so running the same range again redoes only what failed.
Asked for (`deeppatent_lists`), the DeepPatent rebuild runs between the data stages and release, like a stage.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from designclip.flows.deeppatent import deeppatent_step
from designclip.flows.step import Run, Step, step_of
from designclip.flows.weekly import StageOutcome, stream_weeks
from designclip.pipeline.dag.run_profile import RunProfile, default_profile, profile_from_record
from designclip.pipeline.dag.stages import DATA_STAGES, STAGES, invalidate, stages_between
from designclip.pipeline.ingest.driver import KEEP_RAW
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.status import disk_usage
from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

__all__ = ["STAGES", "PipelineFailed", "default_release", "default_run", "force_stage", "pipeline_flow"]


class PipelineFailed(RuntimeError):
    """A stage failed; finished work is kept and `designclip rerun` redoes only the rest."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message, summary)  # both in args: the exception survives pickling (Prefect results)

    @property
    def summary(self) -> dict[str, Any]:
        return self.args[1] or {}

    def __str__(self) -> str:
        return str(self.args[0])


def default_release(start: dt.date, end: dt.date) -> str:
    """`2021` for a one-year range, `2021-2023` for several."""
    return f"{start:%Y}" if start.year == end.year else f"{start:%Y}-{end:%Y}"


def default_run(release: str, profile: RunProfile) -> str:
    """`2021-designclip-tiny`: the release and the model the run trains."""
    return f"{release}-{profile.train.model.replace('/', '-').replace(':', '-')}"


@flow(name="designclip-pipeline", task_runner=ThreadPoolTaskRunner(max_workers=16), log_prints=True)
def pipeline_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    until: str = STAGES[-1],
    from_stage: str = STAGES[0],
    source: str = "bdss",
    base_url: str | None = None,
    archives: list[str] | None = None,
    max_downloads: int | None = None,
    keep_raw: str = KEEP_RAW[0],
    download_limit: int | None = None,
    release: str | None = None,
    run: str | None = None,
    profile: RunProfile | None = None,
    release_options: dict[str, Any] | None = None,
    extra_weeks: list[dt.date] | None = None,
    render_workers: int | None = None,
    deeppatent_lists: str | None = None,
    deeppatent_name: str = layout.DEFAULT_DEEPPATENT_NAME,
) -> dict[str, Any]:
    """Run the stages from `from_stage` to `until` on the weeks granted in [start, end]; finished work is skipped.

    A week that fails in a data stage (ingest, render, caption) stops there while the other weeks flow on, but
    nothing is released from a range with failures; the flow then fails naming the stages to rerun. extra_weeks:
    weeks outside [start, end] whose data stages run too (a scheduled run's revised weeks); render_workers: render
    worker processes (default one per core). deeppatent_lists: DeepPatent's lists folder; given, the weeks are
    also rebuilt as DeepPatent `deeppatent_name` (flows/deeppatent.py) after the data stages, before release.
    """
    log = get_run_logger()
    if start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    todo = stages_between(from_stage, until)
    DataFolder(data_root).check_writable()  # a read-only or missing root fails here, naming it, not at every week
    profile = profile_from_record(profile) or default_profile()
    release = release or default_release(start, end)
    run = run or default_run(release, profile)
    log.info("%s", profile.describe())
    log.info("stages %s on weeks %s..%s; release %s, run %s, data root %s", " -> ".join(todo), start, end, release,
             run, data_root)
    ingest = {"source": source, "base_url": base_url, "max_downloads": max_downloads, "archives": archives,
              "keep_raw": keep_raw, "download_limit": download_limit}
    state = Run(start, end, data_root, profile, release, run, ingest, release_options or {},
                extra_weeks=tuple(sorted(set(extra_weeks or ()))), render_workers=render_workers)
    summary: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "data_root": data_root,
                               "release": release, "run": run, "profile": profile.record(),
                               "profile_line": profile.describe(), "stages": {}, "results": {}, "failed": []}
    streamed = _stream(state, tuple(s for s in todo if s in DATA_STAGES), summary, log)
    if deeppatent_lists:
        _run_step("deeppatent", deeppatent_step(deeppatent_lists, deeppatent_name), state, summary, log)
    for stage in todo:
        if stage not in streamed:
            _run_step(stage, None, state, summary, log)
    summary["disk"] = disk_usage(state.folder)
    if summary["failed"]:
        raise PipelineFailed(f"stages failed: {', '.join(summary['failed'])}; finished work is kept, rerun with "
                             f"`designclip rerun --failed --start {start} --end {end}"
                             f"{_deeppatent_flags(deeppatent_lists, deeppatent_name)}`", summary)
    return summary


def _stream(state: Run, stages: tuple[str, ...], summary: dict[str, Any], log: Any) -> tuple[str, ...]:
    """The data stages of the run, streamed per week, recorded in `summary` like every stage; returns them."""
    if not stages:
        return ()
    try:
        outcomes = stream_weeks(state, stages)
    except Exception as exc:  # noqa: BLE001 - e.g. the listing failed: every data stage is recorded failed
        log.exception("streaming failed")
        outcomes = {stages[0]: StageOutcome([], 0, 0, "", str(exc))}
    for stage in stages:
        outcome = outcomes.get(stage)
        if outcome is None:
            summary["stages"][stage] = {"status": "not run", "reason": f"{', '.join(summary['failed'])} failed"}
            continue
        if outcome.error:
            log.error("stage %s failed: %s", stage, outcome.error)
            summary["failed"].append(stage)
            summary["stages"][stage] = {"status": "failed", "error": outcome.error}
            if not outcome.units:
                continue
        else:
            summary["stages"][stage] = {"status": "done"}
        summary["results"][stage] = outcome.result
        summary["stages"][stage] |= {"units": outcome.units, "skipped": outcome.skipped,
                                     "recomputed": outcome.units - outcome.skipped, "where": outcome.where}
        log.info("stage %s: %d units, %d already done, %d computed; outputs in %s", stage, outcome.units,
                 outcome.skipped, outcome.units - outcome.skipped, outcome.where)
    return stages


def _run_step(stage: str, step: Step | None, state: Run, summary: dict[str, Any], log: Any) -> None:
    """One stage after the data stages, recorded in `summary` (done, failed or not run after a failure); `step`
    None: the stage's own `STEP` (imported only when it runs: model stages pull in torch)."""
    if summary["failed"]:
        summary["stages"][stage] = {"status": "not run", "reason": f"{', '.join(summary['failed'])} failed"}
        return
    step = step or step_of(stage)
    try:
        result = step.call(state)
    except Exception as exc:  # noqa: BLE001 - recorded per stage; the flow fails at the end
        log.error("stage %s failed: %s", stage, exc)
        summary["failed"].append(stage)
        summary["stages"][stage] = {"status": "failed", "error": str(exc)}
        return
    units, skipped = step.count(result)
    where = step.where(state, result)
    summary["results"][stage] = result
    summary["stages"][stage] = {"status": "done", "units": units, "skipped": skipped,
                                "recomputed": units - skipped, "where": where}
    log.info("stage %s: %d units, %d already done, %d computed; outputs in %s", stage, units, skipped,
             units - skipped, where)


def _deeppatent_flags(lists: str | None, name: str) -> str:
    """The rerun hint's DeepPatent options, so the rerun rebuilds it too."""
    if not lists:
        return ""
    return f" --deeppatent {lists}" + (f" --deeppatent-name {name}" if name != layout.DEFAULT_DEEPPATENT_NAME else "")


def force_stage(stage: str, start: dt.date, end: dt.date, data_root: str = layout.DEFAULT_DATA_ROOT,
                release: str | None = None, run: str | None = None, profile: RunProfile | None = None) -> list[str]:
    """Invalidate `stage` and everything after it for the DAG these parameters describe; returns removed paths.

    Weeks in [start, end] (data stages), the release, the run, and the run's and baseline's vectors/reports on
    the release; other releases and runs are kept.
    """
    from designclip.pipeline.dag.forget import weeks_on_disk
    from designclip.pipeline.embed.encoder import EncoderSpec, model_tag

    profile = profile_from_record(profile) or default_profile()
    release = release or default_release(start, end)
    run = run or default_run(release, profile)
    folder = DataFolder(data_root)
    tags = [run]
    if profile.baseline:
        tags.append(model_tag(EncoderSpec(profile.baseline, profile.baseline_pretrained)))
    return invalidate(folder, stage, weeks=weeks_on_disk(folder, start, end, profile.size_profile),
                      profile=profile.size_profile, releases=[release], runs=[run], models=tags)
