"""The TRAIN driver without Prefect: a run trains with progress by step, then is done and skipped."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from designclip.pipeline.common.stage import Scope
from designclip.pipeline.train.driver import TRAIN, TrainStageOptions, TrainUnit
from designclip.pipeline.train.loop import LoopSettings, TrainOptions
from designclip.pipeline.train.model_configs import tiny_model_config
from designclip.storage.folder import DataFolder


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
