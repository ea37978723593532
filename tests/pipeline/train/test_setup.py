"""Train/eval parity: an export's encoder feeds a real view to the model as training did, minus augmentation."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import open_clip
import pytest
import torch
from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder
from designclip.pipeline.train import setup as train_setup
from designclip.pipeline.train.data import decode_image, split_shards
from designclip.pipeline.train.export import export_model, read_export_meta
from designclip.pipeline.train.loop import TrainOptions
from designclip.pipeline.train.model_configs import tiny_model_config

from tests.fixtures.release import read_samples, release_root

OPTIONS = TrainOptions(model="designclip-tiny", model_config=tiny_model_config(), batch_size=16, steps=2)
MEAN, STD = (torch.tensor(v)[:, None, None] for v in (open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD))


@pytest.fixture
def root(release_data: Path, release_v1: dict[str, Any]) -> str:
    return str(release_root(release_data, "v1"))


def train_views(root: str) -> dict[str, bytes]:
    """Every train view's PNG by sample key."""
    shards, _ = split_shards(root, "train")
    return {key: members["png"] for shard in shards for key, members in read_samples(Path(shard))}


def dark_share(images: torch.Tensor) -> float:
    """Share of input pixels darker than mid-gray (ink), after undoing open_clip's normalisation."""
    return float(((images * STD + MEAN)[:, 0] < 0.5).float().mean())


def without_augmentation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training's own transform with its random crop pinned to the whole view (scale 1), so pixels can be compared."""
    build = train_setup.build_design_clip
    monkeypatch.setattr(train_setup, "build_design_clip",
                        lambda *a, **kw: build(*a, aug_cfg={"scale": (1.0, 1.0)}, **kw))


def test_evaluation_input_of_real_views_equals_the_training_input_minus_augmentation(
        root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_augmentation(monkeypatch)
    parts = train_setup.build(root, OPTIONS)
    batch = next(iter(parts.loader(skip_batches=0, workers=0)))
    out = export_model(parts.model, tmp_path / "model", "designclip-tiny")
    assert read_export_meta(out)["preprocess"] == {"keep_ink": True, "input_size": 64}
    encoder = load_encoder(EncoderSpec(str(out)))
    pngs = train_views(root)
    evaluated = torch.stack([encoder.transform(decode_image(pngs[key])) for key in batch.keys])
    assert evaluated.shape == batch.images.shape == (16, 3, 64, 64)
    assert torch.equal(evaluated, batch.images)
    assert encoder.record()["preprocess"] == {"keep_ink": True, "input_size": 64, "recorded": True}
    plain = torch.stack([open_clip.image_transform(64, is_train=False)(decode_image(pngs[k])) for k in batch.keys])
    assert dark_share(plain) < 0.5 * dark_share(batch.images), "without the min-pool the thin lines fade"


def test_augmented_training_batches_hold_as_much_ink_as_the_evaluation_input(root: str, tmp_path: Path) -> None:
    parts = train_setup.build(root, OPTIONS)
    batches = iter(parts.loader(skip_batches=0, workers=0))
    trained = [next(batches) for _ in range(2)]
    encoder = load_encoder(EncoderSpec(str(export_model(parts.model, tmp_path / "model", "designclip-tiny"))))
    pngs = train_views(root)
    evaluated = torch.stack([encoder.transform(decode_image(pngs[k])) for b in trained for k in b.keys])
    train_ink, eval_ink = dark_share(torch.cat([b.images for b in trained])), dark_share(evaluated)
    assert abs(train_ink - eval_ink) < 0.15 * train_ink, (train_ink, eval_ink)


def test_an_export_without_the_record_keeps_the_old_transform_and_says_so(
        tiny_export: Path, tmp_path: Path, root: str, caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    old = tmp_path / "old-export"
    shutil.copytree(tiny_export, old)
    meta = json.loads((old / "designclip.json").read_text())
    del meta["preprocess"]
    (old / "designclip.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="designclip.pipeline.train.export"):
        encoder = load_encoder(EncoderSpec(str(old)))
    assert "does not record its view preprocessing" in caplog.text and str(old) in caplog.text
    view = decode_image(next(iter(train_views(root).values())))
    assert torch.equal(encoder.transform(view), open_clip.image_transform(64, is_train=False)(view))
    assert encoder.record()["preprocess"] == {"keep_ink": False, "input_size": 64, "recorded": False}
