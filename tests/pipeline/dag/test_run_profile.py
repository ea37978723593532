"""The run profile's choices: CPU and GPU settings, command-line overrides, and the stage range it runs."""

from __future__ import annotations

import json

import pytest
from designclip.pipeline.dag.run_profile import ProfileError, default_profile, profile_from_record
from designclip.pipeline.dag.stages import STAGES, StageError, stages_between
from designclip.pipeline.train.options import LoopSettings, TrainOptions


def test_profiles_cpu_and_gpu_settings_and_overrides():
    cpu = default_profile(False)
    assert (cpu.caption.backend, cpu.train.model, cpu.train.steps, cpu.train.batch_size, cpu.baseline) == (
        "metadata", "designclip-tiny", 40, 16, "designclip-tiny")
    assert cpu.train.model_config and (cpu.loop.checkpoint_every, cpu.loop.log_every) == (20, 5)
    gpu = default_profile(True)
    assert (gpu.caption.backend, gpu.train.model, gpu.train.pretrained, gpu.train.steps, gpu.train.epochs) == (
        "llava", "ViT-B-16", "openai", None, 1.0)
    # the GPU profile is the stages' own defaults (declared once, in their options classes) plus weights and LLaVA
    assert gpu.train == TrainOptions(pretrained="openai") and gpu.loop == LoopSettings()
    assert gpu.describe().startswith("GPU profile (asked for): llava captions, ViT-B-16 (openai), 1 epoch(s)")
    changed = cpu.with_options(steps=3, model="ViT-B-32", captioner=None, caption_model="llava-folder", log_every=2)
    assert changed.train.steps == 3 and changed.train.model_config is None and changed.caption.backend == "metadata"
    assert changed.caption.model_id == "llava-folder" and changed.loop.log_every == 2
    assert changed.train.lr == cpu.train.lr  # everything not named is kept
    assert changed.describe().endswith("set by the command line: caption_model, log_every, model, steps")
    assert profile_from_record(json.loads(json.dumps(changed.record()))) == changed
    with pytest.raises(ProfileError, match="unknown run setting 'stepz'"):
        cpu.with_options(stepz=3)


def test_profile_records_from_before_the_option_objects_are_read():
    """A Prefect flow run recorded with the flat profile (`model`, `steps`, ...) can still be rerun."""
    flat = {"gpu": False, "reason": "no CUDA GPU found", "render_size": 512, "captioner": "metadata",
            "caption_model": None, "caption_batch_size": None, "model": "designclip-tiny", "model_config": {"x": 1},
            "pretrained": None, "batch_size": 16, "steps": 40, "epochs": 1.0, "warmup_steps": 5, "lr": 5e-4,
            "lr_head": 5e-3, "checkpoint_every": 20, "log_every": 5, "embed_batch_size": 64,
            "baseline": "designclip-tiny", "baseline_pretrained": None, "overrides": ["steps"]}
    profile = profile_from_record(flat)
    assert profile.train == TrainOptions(model="designclip-tiny", model_config={"x": 1}, batch_size=16, steps=40,
                                         warmup_steps=5, lr=5e-4, lr_head=5e-3)
    assert profile.loop == LoopSettings(checkpoint_every=20, log_every=5) and profile.overrides == ("steps",)


def test_stage_range():
    assert stages_between("caption", "train") == ("caption", "release", "train")
    assert STAGES[0] == "ingest" and STAGES[-1] == "evaluate"
    with pytest.raises(StageError, match="comes after"):
        stages_between("train", "render")
