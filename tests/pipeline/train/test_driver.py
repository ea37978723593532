"""The TRAIN driver on a real release with a tiny open_clip model: resumes exactly, fails clearly, trains with progress
by step without Prefect, then is done and skipped."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import open_clip
import pytest
import torch
from designclip.pipeline.common.stage import Scope
from designclip.pipeline.train.driver import TRAIN, ReleaseMissing, TrainStageOptions, TrainUnit, train_run
from designclip.pipeline.train.loop import LoopSettings, TrainOptions
from designclip.pipeline.train.model import LossWeights
from designclip.pipeline.train.model_configs import tiny_model_config
from designclip.storage.folder import DataFolder
from designclip.storage.train_runs import TrainRunError
from safetensors.torch import load_file

from tests.fixtures.train import TINY_TRAIN

ROOT = Path(__file__).resolve().parents[3]
OPTIONS = TINY_TRAIN


@pytest.fixture()
def data(train_data: str) -> str:
    return train_data


def weights(model_dir: str | Path) -> dict[str, torch.Tensor]:
    out = load_file(str(Path(model_dir) / "open_clip_model.safetensors"))
    out.update({f"head.{k}": v for k, v in load_file(str(Path(model_dir) / "designclip_heads.safetensors")).items()})
    return out


def test_a_stopped_run_resumes_to_the_same_weights_as_an_uninterrupted_one(data: str) -> None:
    loop = LoopSettings(checkpoint_every=4, log_every=2, workers=2)
    full = train_run(data, "v1", "full", OPTIONS, loop)
    first = train_run(data, "v1", "resumed", OPTIONS, LoopSettings(checkpoint_every=4, log_every=2, workers=2,
                                                                   stop_after=6))
    assert first["step"] == 6 and not first["finished"] and first["model_dir"] is None
    second = train_run(data, "v1", "resumed", OPTIONS, loop)
    assert second["finished"] and second["step"] == 12
    a, b = weights(full["model_dir"]), weights(second["model_dir"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resume restores step/optimizer/RNG"
    steps = [json.loads(line)["step"] for line in Path(second["metrics"]).read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 10, 12], "rows logged after the last checkpoint are dropped, not duplicated"
    with pytest.raises(TrainRunError, match="started with other settings \\(options\\)"):
        train_run(data, "v1", "resumed", TrainOptions(**{**OPTIONS.__dict__, "lr": 1e-3}), loop)


KILLED_RUN = """
import sys
from designclip.pipeline.train.model_configs import tiny_model_config
from designclip.pipeline.train.loop import LoopSettings, TrainOptions
from designclip.pipeline.train.driver import train_run
opts = TrainOptions(model="designclip-tiny", model_config=tiny_model_config(), batch_size=8, steps=12,
                    warmup_steps=3, lr=5e-4, lr_head=5e-3)
train_run(sys.argv[1], "v1", sys.argv[2], opts, LoopSettings(checkpoint_every=4, log_every=2, workers=0))
"""


def test_kill_9_mid_run_keeps_whole_checkpoints_and_resume_matches(data: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, data, "killed"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = Path(data, "runs", "killed", "checkpoints")
    deadline = time.monotonic() + 120
    while not (checkpoints / "step-0000004").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (checkpoints / "step-0000004" / "trainer_state.json").exists()
    assert not Path(data, "models", "killed").exists()
    subprocess.run([sys.executable, "-c", KILLED_RUN, data, "killed"], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-c", KILLED_RUN, data, "straight"], env=env, check=True, capture_output=True)
    a, b = weights(Path(data, "models", "killed")), weights(Path(data, "models", "straight"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list(checkpoints.glob(".step-*"))


def test_arcface_objective_trains_on_patent_ids_and_exports(data: str) -> None:
    options = TrainOptions(model="designclip-tiny", model_config=tiny_model_config(), objective="arcface",
                           batch_size=8, steps=30, warmup_steps=2, lr=1e-3, lr_head=5e-2, arcface_s=16.0,
                           arcface_m=0.2,
                           weights=LossWeights())
    stats = train_run(data, "v1", "arc", options, LoopSettings(checkpoint_every=100, log_every=10, workers=0))
    rows = [json.loads(line) for line in Path(stats["metrics"]).read_text().splitlines()]
    assert set(rows[0]) >= {"loss", "loss_arcface"} and rows[-1]["loss"] < rows[0]["loss"]
    meta = json.loads(Path(stats["model_dir"], "designclip.json").read_text())
    assert meta["objective"] == "arcface" and stats["patents"] == 7
    open_clip.create_model_and_transforms(f"local-dir:{stats['model_dir']}")


def test_caption_only_trains_the_clip_term_alone_and_exports(data: str) -> None:
    """IMPACT's plain fine-tune: no class, prompt or multi-view term is computed, whatever the lambdas say."""
    options = TrainOptions(**{**OPTIONS.__dict__, "objective": "caption-only", "steps": 4})
    stats = train_run(data, "v1", "caption", options, LoopSettings(checkpoint_every=100, log_every=2, workers=0))
    rows = [json.loads(line) for line in Path(stats["metrics"]).read_text().splitlines()]
    assert {k for k in rows[0] if k.startswith("loss")} == {"loss", "loss_clip"}
    assert all(r["loss"] == r["loss_clip"] for r in rows)
    meta = json.loads(Path(stats["model_dir"], "designclip.json").read_text())
    assert meta["loss_weights"] == {"clip": 1.0, "cls": 0.0, "prompt": 0.0, "view": 0.0, "locarno": 0.0}
    assert meta["extra"]["options"]["objective"] == "caption-only"


def test_missing_release_and_remote_roots_say_what_to_do(data: str) -> None:
    with pytest.raises(ReleaseMissing, match="run `designclip release --version v9` first"):
        train_run(data, "v9", "x", OPTIONS)
    with pytest.raises(TrainRunError, match="needs a local data root"):
        from designclip.storage.train_runs import TrainRun

        TrainRun("memory://bucket/data", "x")


DDP_LAUNCH = """
import sys
from designclip.cli.main import main
raise SystemExit(main(["--data-root", sys.argv[1], "train", "--release", "v1", "--run", "ddp", "--model-config",
                       sys.argv[2], "--batch-size", "4", "--epochs", "1", "--checkpoint-every", "2", "--log-every", "2",
                       "--workers", "0", "--warmup-steps", "1"]))
"""


def test_two_processes_train_with_ddp_and_checkpoint_both_rng_states(data: str, tmp_path: Path) -> None:
    """The multi-GPU path (`accelerate launch … designclip.cli.main train`) as two real CPU processes over gloo."""
    script = tmp_path / "launch.py"
    script.write_text(DDP_LAUNCH)
    config = ROOT / "designclip" / "model_configs" / "designclip-tiny.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), data,
                          str(config)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("Run ddp trained: step 4 of 4") == 1, "only rank 0 reports"
    checkpoint = Path(data, "runs", "ddp", "checkpoints", "step-0000004")
    assert {"random_states_0.pkl", "random_states_1.pkl", "model.safetensors"} <= {p.name for p in checkpoint.iterdir()}
    rows = [json.loads(line) for line in Path(data, "runs", "ddp", "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and rows[-1]["epoch"] == 1.0, "one epoch: 32 views / (4 x 2 processes)"
    open_clip.create_model_and_transforms(f"local-dir:{Path(data, 'models', 'ddp')}")


def test_a_run_trains_then_is_skipped(release_data: Path, release_v1: dict, tmp_path: Path) -> None:
    shutil.copytree(release_data / "releases" / "v1", tmp_path / "data" / "releases" / "v1")
    folder = DataFolder(tmp_path / "data")
    options = TrainStageOptions(TrainOptions(model="designclip-tiny", model_config=tiny_model_config(), batch_size=8,
                                             steps=2, warmup_steps=1),
                                LoopSettings(checkpoint_every=2, log_every=1, workers=0))
    scope = Scope(dt.date(2021, 1, 1), dt.date(2021, 12, 31), release="v1", run="tiny", size_profile="px512")
    [unit] = TRAIN.units(folder, scope, options)
    assert unit == TrainUnit("v1", "tiny") and not TRAIN.is_done(folder, unit, options)
    calls: list[tuple[int, int | None]] = []
    first = TRAIN.run(folder, unit, options, lambda done, total=None: calls.append((done, total)))
    assert not first.skipped and first.stats["finished"] and calls == [(1, 2), (2, 2)]
    assert first.where == TRAIN.outputs(folder, scope, options) and Path(first.where, "designclip.json").is_file()
    assert TRAIN.is_done(folder, unit, options)
    again = TRAIN.run(folder, unit, options)
    assert again.skipped and again.stats["finished_at"] == first.stats["finished_at"]
