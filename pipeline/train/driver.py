"""The TRAIN stage driver, Prefect-free: a released split -> a model folder, resumable from checkpoints.

Unit: a run (its name, on a release). Done: `runs/RUN/train.json` (written last) recording the same release
fingerprint and options; a run started with other options is refused by `TrainRun.start`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.common.plots import loss_curves
from designclip.pipeline.common.stage import Logger, Progress, Scope, UnitResult, no_progress
from designclip.pipeline.train.loop import DEFAULT_LOOP, LoopSettings, TrainError, TrainOptions, train
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.release import read_release_marker, release_digest
from designclip.storage.train_runs import TrainRun


class ReleaseMissing(TrainError):
    """Training reads a finished release; the message says which command builds it."""


@dataclass(frozen=True)
class TrainStageOptions:
    """What a run learns (TrainOptions, recorded in run.json) and how the loop runs (LoopSettings, not recorded)."""

    train: TrainOptions = field(default_factory=TrainOptions)
    loop: LoopSettings = DEFAULT_LOOP


@dataclass(frozen=True)
class TrainUnit:
    """One training run: its name and the release it trains on."""

    release: str
    run: str

    def __str__(self) -> str:
        return self.run


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


@dataclass(frozen=True)
class TrainDriver:
    """TRAIN: train (or resume) a run on a release; a finished identical run is skipped."""

    log: Logger = field(default_factory=lambda: logging.getLogger("designclip.train"))
    name: str = "train"

    def units(self, folder: DataFolder, scope: Scope, options: TrainStageOptions) -> list[TrainUnit]:
        return [TrainUnit(scope.release, scope.run)]

    def _record(self, folder: DataFolder, unit: TrainUnit, options: TrainStageOptions) -> dict[str, Any]:
        return {"release": release_record(folder.url, unit.release), "options": options.train.record()}

    def is_done(self, folder: DataFolder, unit: TrainUnit, options: TrainStageOptions) -> bool:
        try:
            record = self._record(folder, unit, options)
        except ReleaseMissing:
            return False
        finished = TrainRun(folder.url, unit.run).done()
        return finished is not None and finished.get("record") == record

    def outputs(self, folder: DataFolder, scope: Scope, options: TrainStageOptions) -> str:
        return folder.path(layout.model_dir(scope.run))

    def run(self, folder: DataFolder, unit: TrainUnit, options: TrainStageOptions, progress: Progress = no_progress,
            on_log: Callable[[dict[str, Any]], None] | None = None) -> UnitResult:
        """Train to the end (or `loop.stop_after`); progress gets (step, total steps), `on_log` each logged row."""
        from designclip.pipeline.train.export import export_model

        opts, data_root, run_name = options.train, folder.url, unit.run
        record = self._record(folder, unit, options)
        run = TrainRun(data_root, run_name)
        finished = run.done()
        if finished is not None and finished.get("record") == record:
            self.log.info("run %s: already trained (%s)", run_name, run.model_dir)
            return UnitResult(self.name, run_name, True, finished, str(run.model_dir))
        run.start(record)
        started = dt.datetime.now(dt.UTC)

        def export(model: Any, result: dict[str, Any]) -> None:
            extra = {"run": run_name, "release": record["release"], "steps": result["step"], "options": opts.record()}
            run.publish_model(lambda tmp: export_model(model, tmp, opts.model_config or opts.model, extra))

        def logged(row: dict[str, Any]) -> None:
            progress(row["step"], row["total_steps"])
            if on_log is not None:
                on_log(row)

        release_dir = folder.path(layout.release_dir(unit.release))
        result = train(release_dir, run, opts, options.loop, export=export, on_log=logged, logger=self.log)
        plot = write_loss_plot(run, f"{run_name} ({opts.objective}, {opts.model}) on {unit.release}")
        stats = finish_run(run, run_name, record, result, plot, started)
        return UnitResult(self.name, run_name, False, stats, str(run.model_dir))


TRAIN = TrainDriver()


def finish_run(run: Any, run_name: str, record: dict[str, Any], result: dict[str, Any], plot: Any,
               started: dt.datetime) -> dict[str, Any]:
    """A run's stats (where its model, curve and log are); a finished run's done marker is written with them."""
    stats = {"run": run_name, "record": record, **result,
             "model_dir": str(run.model_dir) if result["finished"] else None, "loss_plot": plot,
             "metrics": str(run.metrics_path), "started_at": started.isoformat(),
             "finished_at": dt.datetime.now(dt.UTC).isoformat()}
    if result["finished"]:
        run.finish(stats)
    return stats


def stats_of(result: UnitResult) -> dict[str, Any]:
    """The run's stats as the CLI printers and flows read them (train.json plus `skipped`)."""
    return {**result.stats, "skipped": result.skipped}


def train_run(data_root: str, release: str, run_name: str, options: TrainOptions,
              loop: LoopSettings = DEFAULT_LOOP, logger: Logger | None = None,
              on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) run `run_name` on a release in this process; a finished identical run is skipped."""
    driver = TrainDriver(logger) if logger is not None else TRAIN
    result = driver.run(DataFolder(data_root), TrainUnit(release, run_name), TrainStageOptions(options, loop),
                        on_log=on_log)
    return stats_of(result)


def train_deeppatent(data_root: str, deeppatent_dir: str, run_name: str, options: TrainOptions,
                     loop: LoopSettings = DEFAULT_LOOP, logger: Logger | None = None) -> dict[str, Any]:
    """Train (or resume) run `run_name` on a DeepPatent-layout folder's training list, in this process; the export
    records the folder, its list's sha256 and the trained patent ids (trained_patents.txt) for the overlap check."""
    from designclip.pipeline.train.deeppatent_data import read_train_list
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.setup import build_deeppatent

    log = logger or logging.getLogger("designclip.train")
    sheets = read_train_list(deeppatent_dir)
    record = {"deeppatent": sheets.record(), "options": options.record()}
    run = TrainRun(data_root, run_name)
    finished = run.done()
    if finished is not None and finished.get("record") == record:
        log.info("run %s: already trained (%s)", run_name, run.model_dir)
        return {**finished, "skipped": True}
    run.start(record)
    started = dt.datetime.now(dt.UTC)

    def export(model: Any, result: dict[str, Any]) -> None:
        extra = {"run": run_name, "deeppatent": sheets.record(), "steps": result["step"], "options": options.record()}

        def write(tmp: Any) -> None:
            export_model(model, tmp, options.model_config or options.model, extra)
            (tmp / "trained_patents.txt").write_text("".join(f"{p}\n" for p in sheets.patents))

        run.publish_model(write)

    result = train(deeppatent_dir, run, options, loop, export=export, logger=log, build_parts=build_deeppatent)
    plot = write_loss_plot(run, f"{run_name} ({options.objective}, {options.model}) on {deeppatent_dir}")
    return {**finish_run(run, run_name, record, result, plot, started), "skipped": False}
