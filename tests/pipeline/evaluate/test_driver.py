"""The EVALUATE driver without Prefect: one model's report written, then skipped while its inputs are the same; the
PatentCLIP baseline is real loading code that fails clearly offline."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.pipeline.evaluate.driver import EVALUATE, EvaluateOptions, EvalUnit, evaluation_of
from designclip.storage import layout
from designclip.storage.folder import DataFolder


def test_a_report_is_written_then_skipped(embedded_v1: dict, tmp_path: Path) -> None:
    src, tag = Path(embedded_v1["data_root"]), embedded_v1["tag"]
    for rel in (layout.release_dir("v1"), layout.embed_dir("v1", tag)):
        shutil.copytree(src / rel, tmp_path / "data" / rel)
    folder = DataFolder(tmp_path / "data")
    unit, options = EvalUnit("v1", EncoderSpec(embedded_v1["model"]), tag), EvaluateOptions(pairs_5k=50)
    assert str(unit) == tag and not EVALUATE.is_done(folder, unit, options)
    first = EVALUATE.run(folder, unit, options)
    assert not first.skipped and first.where == folder.path(layout.report_dir("v1", tag))
    assert "report.md" in first.stats["files"] and EVALUATE.is_done(folder, unit, options)
    again = evaluation_of(folder, unit, EVALUATE.run(folder, unit, options))
    assert again["skipped"] and again["report"]["created_at"] == first.stats["created_at"]
    assert Path(again["files"]["report.json"]).is_file() and again["model_tag"] == tag
    assert not EVALUATE.is_done(folder, unit, dataclasses.replace(options, seed=1))


def test_the_patentclip_baseline_is_real_loading_code_that_fails_clearly_offline(embedded_v1: dict,
                                                                                monkeypatch) -> None:
    import huggingface_hub.constants
    from designclip.pipeline.embed.encoder import EncoderError, EncoderSpec
    from designclip.pipeline.evaluate.driver import evaluate_model

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries against an absent network
    with pytest.raises(EncoderError, match=r"could not load hf-hub:patentclip/PatentCLIP_Vit_B.*cannot be downloaded "
                                           r"offline"):
        evaluate_model(embedded_v1["data_root"], "v1", EncoderSpec("hf-hub:patentclip/PatentCLIP_Vit_B"))
