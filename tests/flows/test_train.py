"""The train flow under embedded Prefect: trains, exports a plain open_clip folder, and a rerun skips."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch
from designclip.pipeline.train.loop import LoopSettings, TrainOptions
from safetensors.torch import load_file

from tests.fixtures.train import TINY_TRAIN

OPTIONS = TINY_TRAIN


@pytest.fixture()
def data(train_data: str) -> str:
    return train_data


def test_flow_trains_exports_a_plain_open_clip_folder_and_rerun_skips(data: str, prefect_harness: None) -> None:
    from designclip.flows.train import train_flow

    options = TrainOptions(**{**OPTIONS.__dict__, "steps": 30})
    stats = train_flow(release="v1", run="tiny", data_root=data, options=options,
                       loop=LoopSettings(checkpoint_every=10, log_every=5, workers=2))
    assert stats["finished"] and stats["step"] == 30 and not stats["skipped"]
    rows = [json.loads(line) for line in Path(stats["metrics"]).read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    assert {"loss_clip", "loss_cls", "loss_prompt", "loss_view"} <= set(rows[0])
    assert rows[-1]["loss"] < 0.85 * rows[0]["loss"], "the total loss falls over 30 steps"
    assert Path(stats["loss_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_dir = Path(stats["model_dir"])
    assert sorted(p.name for p in Path(data, "runs", "tiny", "checkpoints").iterdir()) == ["step-0000020",
                                                                                            "step-0000030"]
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{model_dir}")
    meta = json.loads((model_dir / "designclip.json").read_text())
    assert meta["objective"] == "clip" and meta["extra"]["steps"] == 30 and meta["extra"]["release"]["version"] == "v1"
    assert meta["preprocess"] == {"keep_ink": True, "input_size": 64}, "evaluation applies what training did"
    trained = load_file(str(model_dir / "open_clip_model.safetensors"))
    state = model.state_dict()
    assert set(trained) <= set(state) and all(torch.equal(state[k], v) for k, v in trained.items())
    mtime = (model_dir / "designclip.json").stat().st_mtime_ns
    again = train_flow(release="v1", run="tiny", data_root=data, options=options)
    assert again["skipped"] and (model_dir / "designclip.json").stat().st_mtime_ns == mtime
