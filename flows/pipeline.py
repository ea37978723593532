"""The whole DAG as one flow: ingest -> render -> caption -> release -> train -> embed/index -> evaluate.

Each stage is the existing flow, called as a subflow; stages exchange nothing but files under the data root, and
each skips its finished units by their done markers, so running the same range again redoes only what failed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from designclip.pipeline.dag.run_profile import STAGES, RunProfile, default_profile, profile_from_record, stages_between
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
    return f"{release}-{profile.model.replace('/', '-').replace(':', '-')}"


def _units(stage: str, result: Any) -> tuple[int, int]:
    """(units, units skipped because already done) of one stage's result."""
    if stage in ("ingest", "render"):
        return len(result), sum(1 for r in result if str(r.get("status", "")).startswith("skipped"))
    if stage == "caption":
        return result["shards"], result["skipped"]
    if stage in ("release", "train"):
        return 1, int(bool(result.get("skipped")))
    if stage == "index":
        cards = list(result["index"]["indexes"].values())
        return result["embed"]["shards"] + len(cards), result["embed"]["skipped"] + sum(
            1 for c in cards if c.get("skipped"))
    rows = result["models"]
    return len(rows), sum(1 for r in rows if r.get("skipped"))


def _where(stage: str, folder: DataFolder, profile: RunProfile, release: str, run: str, result: Any) -> str:
    """The folder a stage's outputs are in."""
    if stage == "ingest":
        return folder.root
    if stage == "render":
        return folder.path("shards", profile.size_profile)
    if stage == "caption":
        return folder.path(layout.caption_set_dir(profile.size_profile, result["caption_set"]))
    if stage == "release":
        return folder.path(layout.release_dir(release))
    if stage == "train":
        return folder.path(layout.model_dir(run))
    if stage == "index":
        return folder.path(layout.index_model_dir(release, result["index"]["model_tag"]))
    return folder.path(layout.release_derived_dirs(release)[2])


def _stage_call(stage: str, start: dt.date, end: dt.date, data_root: str, profile: RunProfile, release: str,
                run: str, caption_set: str | None, ingest: dict[str, Any], release_options: dict[str, Any]) -> Any:
    """Run one stage's flow as a subflow (imported when needed: the model stages pull in torch and FAISS)."""
    if stage == "ingest":
        from designclip.flows.ingest import ingest_flow

        return ingest_flow(start=start, end=end, data_root=data_root, **ingest)
    if stage == "render":
        from designclip.flows.render import render_flow

        return render_flow(start=start, end=end, data_root=data_root, size=profile.render_size)
    if stage == "caption":
        from designclip.flows.caption import caption_flow

        return caption_flow(start=start, end=end, data_root=data_root, profile=profile.size_profile,
                            captioner=profile.captioner, model=profile.caption_model,
                            batch_size=profile.caption_batch_size)
    if stage == "release":
        from designclip.flows.release import release_flow

        return release_flow(version=release, data_root=data_root, profile=profile.size_profile,
                            years=list(range(start.year, end.year + 1)),
                            caption_source=caption_set or profile.captioner, **release_options)
    if stage == "train":
        from designclip.flows.train import train_flow

        return train_flow(release=release, run=run, data_root=data_root, options=profile.train_options(),
                          loop=profile.loop_settings())
    if stage == "index":
        from designclip.flows.embed import embed_flow
        from designclip.flows.index import index_flow

        embedded = embed_flow(release=release, model=run, data_root=data_root, batch_size=profile.embed_batch_size)
        return {"embed": embedded, "index": index_flow(release=release, model=run, data_root=data_root)}
    from designclip.flows.evaluate import evaluate_flow

    models, pretrained = [run], [None]
    if profile.baseline:
        models.append(profile.baseline)
        pretrained.append(profile.baseline_pretrained)
    return evaluate_flow(release=release, models=models, data_root=data_root, pretrained=pretrained,
                         batch_size=profile.embed_batch_size)


@flow(name="designclip-pipeline", log_prints=True)
def pipeline_flow(
    start: dt.date,
    end: dt.date,
    data_root: str = "./data",
    until: str = "evaluate",
    from_stage: str = "ingest",
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
    folder = DataFolder(data_root)
    ingest = {"source": source, "base_url": base_url, "max_downloads": max_downloads, "archives": archives}
    summary: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "data_root": data_root,
                               "release": release, "run": run, "profile": profile.record(),
                               "profile_line": profile.describe(), "stages": {}, "results": {}, "failed": []}
    caption_set: str | None = None
    for stage in todo:
        if summary["failed"] and stage not in ("render", "caption"):
            summary["stages"][stage] = {"status": "not run", "reason": f"{', '.join(summary['failed'])} failed"}
            continue
        try:
            result = _stage_call(stage, start, end, data_root, profile, release, run, caption_set, ingest,
                                 release_options or {})
        except Exception as exc:  # noqa: BLE001 - recorded per stage; the flow fails at the end
            log.error("stage %s failed: %s", stage, exc)
            summary["failed"].append(stage)
            summary["stages"][stage] = {"status": "failed", "error": str(exc)}
            continue
        if stage == "caption":
            caption_set = result["caption_set"]
        units, skipped = _units(stage, result)
        where = _where(stage, folder, profile, release, run, result)
        summary["results"][stage] = result
        summary["stages"][stage] = {"status": "done", "units": units, "skipped": skipped,
                                    "recomputed": units - skipped, "where": where}
        log.info("stage %s: %d units, %d already done, %d computed; outputs in %s", stage, units, skipped,
                 units - skipped, where)
    if summary["failed"]:
        raise PipelineFailed(f"stages failed: {', '.join(summary['failed'])}; finished work is kept, rerun with "
                             f"`designclip rerun --failed --start {start} --end {end}`", summary)
    return summary


def force_stage(stage: str, start: dt.date, end: dt.date, data_root: str = "./data", release: str | None = None,
                run: str | None = None, profile: RunProfile | None = None) -> list[str]:
    """Invalidate `stage` and everything after it for the DAG these parameters describe; returns removed paths.

    Weeks in [start, end] (data stages), the release, the run, and the run's and baseline's vectors/reports on
    the release; other releases and runs are kept.
    """
    from designclip.pipeline.embed.encoder import EncoderSpec, model_tag
    from designclip.storage.invalidate import invalidate, weeks_on_disk

    profile = profile_from_record(profile) or default_profile()
    release = release or default_release(start, end)
    run = run or default_run(release, profile)
    folder = DataFolder(data_root)
    tags = [run]
    if profile.baseline:
        tags.append(model_tag(EncoderSpec(profile.baseline, profile.baseline_pretrained)))
    return invalidate(folder, stage, weeks=weeks_on_disk(folder, start, end, profile.size_profile),
                      profile=profile.size_profile, releases=[release], runs=[run], models=tags)
