"""The train task: a released split -> a DesignCLIP (or ArcFace) model folder, resumable from checkpoints."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from designclip.pipeline.common.plots import loss_curves
from designclip.pipeline.train.loop import DEFAULT_LOOP, LoopSettings, TrainError, TrainOptions, train
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.release import read_release_marker, release_digest
from designclip.storage.train_runs import TrainRun
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE


class ReleaseMissing(TrainError):
    """Training reads a finished release; the message says which command builds it."""


def release_record(data_root: str, release: str) -> dict[str, Any]:
    """The release a run trains on, identified by its marker's fingerprint (a rebuilt release is another input)."""
    marker = read_release_marker(DataFolder(data_root), release)
    if marker is None:
        raise ReleaseMissing(f"release {release!r} is not finished under {data_root}: run "
                             f"`designclip release --version {release}` first")
    return {"version": release, "fingerprint_sha256": release_digest(marker), "samples": marker["samples"],
            "train_samples": marker["splits"]["train"]["samples"]}


def write_loss_plot(run: TrainRun, title: str) -> str | None:
    """loss.png from metrics.jsonl (every term the run logged)."""
    rows = run.read_metrics()
    if not rows:
        return None
    names = [k for k in rows[-1] if k == "loss" or k.startswith("loss_")]
    series = {k: [float(r.get(k, float("nan"))) for r in rows] for k in names}
    return str(run.write_file("loss.png", loss_curves([r["step"] for r in rows], series, title)))


def train_run(data_root: str, release: str, run_name: str, options: TrainOptions,
              loop: LoopSettings = DEFAULT_LOOP, logger: logging.Logger | logging.LoggerAdapter | None = None,
              on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) run `run_name` on a release; a finished identical run is skipped."""
    from designclip.pipeline.train.export import export_model

    log = logger or logging.getLogger("designclip.train")
    record = {"release": release_record(data_root, release), "options": options.record()}
    run = TrainRun(data_root, run_name)
    finished = run.done()
    if finished is not None and finished.get("record") == record:
        log.info("run %s: already trained (%s)", run_name, run.model_dir)
        return {**finished, "skipped": True}
    run.start(record)
    started = dt.datetime.now(dt.UTC)

    def export(model: Any, result: dict[str, Any]) -> None:
        extra = {"run": run_name, "release": record["release"], "steps": result["step"], "options": options.record()}
        run.publish_model(lambda tmp: export_model(model, tmp, options.model_config or options.model, extra))

    release_dir = DataFolder(data_root).path(layout.release_dir(release))
    result = train(release_dir, run, options, loop, export=export, on_log=on_log, logger=log)
    plot = write_loss_plot(run, f"{run_name} ({options.objective}, {options.model}) on {release}")
    stats = {"run": run_name, "record": record, **result, "model_dir": str(run.model_dir) if result["finished"] else
             None, "loss_plot": plot, "metrics": str(run.metrics_path), "started_at": started.isoformat(),
             "finished_at": dt.datetime.now(dt.UTC).isoformat()}
    if result["finished"]:
        run.finish(stats)
    return {**stats, "skipped": False}


@task(name="train", task_run_name="train-{run_name}", cache_policy=NO_CACHE)
def train_task(data_root: str, release: str, run_name: str, options: TrainOptions,
               loop: LoopSettings = DEFAULT_LOOP) -> dict[str, Any]:
    """One training run as a Prefect task (no retries: a rerun resumes from the last checkpoint)."""
    log = get_run_logger()
    progress: CountProgress | None = None

    def on_log(row: dict[str, Any]) -> None:
        nonlocal progress
        if progress is None:
            progress = CountProgress(f"train {run_name}", row["total_steps"], log, unit="steps", every_s=0.0)
        terms = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("loss"))
        progress(row["step"], extra=f" {terms}, lr {row['lr']:.2e}, {row['samples_per_s']} samples/s")

    return train_run(data_root, release, run_name, options, loop, logger=log, on_log=on_log)
