"""The whole DAG as one flow: ingest -> render -> caption -> release -> train -> embed/index -> evaluate.

Each stage is its own flow, called as a subflow through one `Step` per stage (how to call it, how many units it
had, where its outputs are); stages exchange nothing but files under the data root, and each skips its finished
units by their done markers, so running the same range again redoes only what failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.dag.run_profile import RunProfile, default_profile, profile_from_record
from designclip.pipeline.dag.stages import DATA_STAGES, STAGES, invalidate, stages_between
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from prefect import flow, get_run_logger

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


@dataclass
class Run:
    """What every stage of one DAG run is called with (built once from the flow's parameters)."""

    start: dt.date
    end: dt.date
    data_root: str
    profile: RunProfile
    release: str
    run: str
    ingest: dict[str, Any]
    release_options: dict[str, Any]
    caption_set: str | None = None
    folder: DataFolder = field(init=False)

    def __post_init__(self) -> None:
        self.folder = DataFolder(self.data_root)


@dataclass(frozen=True)
class Step:
    """How the DAG runs one stage: its flow call, (units, already done) of its result, and its output folder."""

    call: Callable[[Run], Any]
    count: Callable[[Any], tuple[int, int]]
    where: Callable[[Run, Any], str]


def _per_week(rows: list[dict[str, Any]]) -> tuple[int, int]:
    return len(rows), sum(1 for r in rows if str(r.get("status", "")).startswith("skipped"))


def _one(result: dict[str, Any]) -> tuple[int, int]:
    return 1, int(bool(result.get("skipped")))


def _ingest(r: Run) -> Any:
    from designclip.flows.ingest import ingest_flow

    return ingest_flow(start=r.start, end=r.end, data_root=r.data_root, **r.ingest)


def _render(r: Run) -> Any:
    from designclip.flows.render import render_flow

    return render_flow(start=r.start, end=r.end, data_root=r.data_root, size=r.profile.render_size)


def _caption(r: Run) -> Any:
    from designclip.flows.caption import caption_flow

    result = caption_flow(start=r.start, end=r.end, data_root=r.data_root, profile=r.profile.size_profile,
                          captioner=r.profile.caption.backend, model=r.profile.caption.model_id,
                          batch_size=r.profile.caption.batch_size)
    r.caption_set = result["caption_set"]
    return result


def _release(r: Run) -> Any:
    from designclip.flows.release import release_flow

    return release_flow(version=r.release, data_root=r.data_root, profile=r.profile.size_profile,
                        years=list(range(r.start.year, r.end.year + 1)),
                        caption_source=r.caption_set or r.profile.caption.backend, **r.release_options)


def _train(r: Run) -> Any:
    from designclip.flows.train import train_flow

    return train_flow(release=r.release, run=r.run, data_root=r.data_root, options=r.profile.train,
                      loop=r.profile.loop)


def _index(r: Run) -> Any:
    from designclip.flows.embed import embed_flow
    from designclip.flows.index import index_flow

    embedded = embed_flow(release=r.release, model=r.run, data_root=r.data_root,
                          batch_size=r.profile.embed_batch_size)
    return {"embed": embedded, "index": index_flow(release=r.release, model=r.run, data_root=r.data_root)}


def _index_count(result: dict[str, Any]) -> tuple[int, int]:
    cards = list(result["index"]["indexes"].values())
    return (result["embed"]["shards"] + len(cards),
            result["embed"]["skipped"] + sum(1 for c in cards if c.get("skipped")))


def _evaluate(r: Run) -> Any:
    from designclip.flows.evaluate import evaluate_flow

    models, pretrained = [r.run], [None]
    if r.profile.baseline:
        models.append(r.profile.baseline)
        pretrained.append(r.profile.baseline_pretrained)
    return evaluate_flow(release=r.release, models=models, data_root=r.data_root, pretrained=pretrained,
                         batch_size=r.profile.embed_batch_size)


STEPS: dict[str, Step] = {
    "ingest": Step(_ingest, _per_week, lambda r, _: r.folder.root),
    "render": Step(_render, _per_week, lambda r, _: r.folder.path("shards", r.profile.size_profile)),
    "caption": Step(_caption, lambda res: (res["shards"], res["skipped"]),
                    lambda r, res: r.folder.path(layout.caption_set_dir(r.profile.size_profile, res["caption_set"]))),
    "release": Step(_release, _one, lambda r, _: r.folder.path(layout.release_dir(r.release))),
    "train": Step(_train, _one, lambda r, _: r.folder.path(layout.model_dir(r.run))),
    "index": Step(_index, _index_count,
                  lambda r, res: r.folder.path(layout.index_model_dir(r.release, res["index"]["model_tag"]))),
    "evaluate": Step(_evaluate, lambda res: (len(res["models"]), sum(1 for m in res["models"] if m.get("skipped"))),
                     lambda r, _: r.folder.path(layout.release_derived_dirs(r.release)[2])),
}
assert tuple(STEPS) == STAGES, "every registered stage needs its step (and nothing else)"


@flow(name="designclip-pipeline", log_prints=True)
def pipeline_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = layout.DEFAULT_DATA_ROOT,
    until: str = STAGES[-1],
    from_stage: str = STAGES[0],
    source: str = "bdss",
    base_url: str | None = None,
    archives: list[str] | None = None,
    max_downloads: int = 2,
    release: str | None = None,
    run: str | None = None,
    profile: RunProfile | None = None,
    release_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the stages from `from_stage` to `until` on the weeks granted in [start, end]; finished work is skipped.

    A failed data stage (ingest, render, caption) does not stop the other data stages on the weeks that did
    finish, but nothing is released from a range with failures; the flow then fails naming the stages to rerun.
    """
    log = get_run_logger()
    if start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    todo = stages_between(from_stage, until)
    profile = profile_from_record(profile) or default_profile()
    release = release or default_release(start, end)
    run = run or default_run(release, profile)
    log.info("%s", profile.describe())
    log.info("stages %s on weeks %s..%s; release %s, run %s, data root %s", " -> ".join(todo), start, end, release,
             run, data_root)
    ingest = {"source": source, "base_url": base_url, "max_downloads": max_downloads, "archives": archives}
    state = Run(start, end, data_root, profile, release, run, ingest, release_options or {})
    summary: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "data_root": data_root,
                               "release": release, "run": run, "profile": profile.record(),
                               "profile_line": profile.describe(), "stages": {}, "results": {}, "failed": []}
    for stage in todo:
        if summary["failed"] and stage not in DATA_STAGES[1:]:
            summary["stages"][stage] = {"status": "not run", "reason": f"{', '.join(summary['failed'])} failed"}
            continue
        step = STEPS[stage]
        try:
            result = step.call(state)
        except Exception as exc:  # noqa: BLE001 - recorded per stage; the flow fails at the end
            log.error("stage %s failed: %s", stage, exc)
            summary["failed"].append(stage)
            summary["stages"][stage] = {"status": "failed", "error": str(exc)}
            continue
        units, skipped = step.count(result)
        where = step.where(state, result)
        summary["results"][stage] = result
        summary["stages"][stage] = {"status": "done", "units": units, "skipped": skipped,
                                    "recomputed": units - skipped, "where": where}
        log.info("stage %s: %d units, %d already done, %d computed; outputs in %s", stage, units, skipped,
                 units - skipped, where)
    if summary["failed"]:
        raise PipelineFailed(f"stages failed: {', '.join(summary['failed'])}; finished work is kept, rerun with "
                             f"`designclip rerun --failed --start {start} --end {end}`", summary)
    return summary


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
