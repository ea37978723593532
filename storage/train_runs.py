"""A training run on disk: its settings, atomic checkpoints, metrics log, loss curve, exported model, done marker."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker

_STEP = re.compile(r"^step-(\d{7})$")


class TrainRunError(RuntimeError):
    """A run folder that cannot be used as asked; the message says what to do."""


class TrainRun:
    """`runs/{run}/` under a local data root (accelerate writes checkpoints as local folders)."""

    def __init__(self, data_root: str, run: str, keep_checkpoints: int = 2) -> None:
        folder = DataFolder(data_root)
        if not folder.is_local:
            raise TrainRunError(f"training needs a local data root, not {data_root}: copy the release to a local "
                                "folder (e.g. `aws s3 sync`) and pass that as --data-root")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$", run):
            raise TrainRunError(f"run name {run!r}: use letters, digits and . _ + -")
        self.folder, self.run, self.keep = folder, run, keep_checkpoints
        self.dir = Path(folder.path(layout.train_run_dir(run)))
        self.checkpoints = self.dir / "checkpoints"
        self.model_dir = Path(folder.path(layout.model_dir(run)))

    def _json(self, name: str) -> dict[str, Any] | None:
        path = self.dir / name
        return json.loads(path.read_text()) if path.exists() else None

    def _write_json(self, name: str, obj: Any) -> None:
        self.folder.write_json(f"{layout.train_run_dir(self.run)}/{name}", obj)

    def start(self, record: dict[str, Any]) -> None:
        """Write run.json, or check that a run being resumed was started with the same settings."""
        old = self._json("run.json")
        if old is not None and old != record:
            changed = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise TrainRunError(f"run {self.run!r} was started with other settings ({', '.join(changed)}): "
                                "resume it with the same ones, or pick another --run name")
        if old is None:
            self._write_json("run.json", record)

    @property
    def marker(self) -> DoneMarker:
        """train.json, the run's done marker: its stats, written last."""
        return DoneMarker(self.folder, f"{layout.train_run_dir(self.run)}/train.json")

    def done(self) -> dict[str, Any] | None:
        """The finished run's stats (train.json, written last), or None."""
        return self.marker.read()

    def finish(self, stats: dict[str, Any]) -> None:
        self.marker.write(stats)

    def latest_checkpoint(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest complete checkpoint (folders are renamed into place only when whole)."""
        if not self.checkpoints.exists():
            return None
        steps = sorted((int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := _STEP.match(p.name)))
        for _, path in reversed(steps):
            state = path / "trainer_state.json"
            if state.exists():
                return path, json.loads(state.read_text())
        return None

    def checkpoint_tmp(self, step: int) -> Path:
        """The folder every process writes its part of checkpoint `step` into before it is committed."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self.checkpoints / f".step-{step:07d}.tmp"

    def commit_checkpoint(self, step: int, tmp: Path, state: dict[str, Any]) -> Path:
        """trainer_state.json last, then rename: a folder named `step-NNNNNNN` is always whole."""
        try:
            (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
            final = self.checkpoints / f"step-{step:07d}"
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune()
        return final

    def _prune(self) -> None:
        steps = sorted(p for p in self.checkpoints.iterdir() if _STEP.match(p.name))
        for old in steps[: max(0, len(steps) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.checkpoints.glob(".step-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                break  # a line cut by a crash ends the log
        return rows

    def keep_metrics_until(self, step: int) -> None:
        """On resume: drop rows logged after the checkpoint (those steps run again)."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        rel = f"{layout.train_run_dir(self.run)}/metrics.jsonl"
        with self.folder.atomic_open(rel, "w") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()

    def write_file(self, name: str, data: bytes) -> Path:
        with self.folder.atomic_open(f"{layout.train_run_dir(self.run)}/{name}", "wb") as f:
            f.write(data)
        return self.dir / name

    def publish_model(self, export: Callable[[Path], None]) -> Path:
        """`export(tmp_dir)` writes the model folder; it replaces `models/{run}` only when whole."""
        self.model_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.model_dir.parent / f".{self.run}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            export(tmp)
            if self.model_dir.exists():
                shutil.rmtree(self.model_dir)
            os.replace(tmp, self.model_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.model_dir
