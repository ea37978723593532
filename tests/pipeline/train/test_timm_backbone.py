"""The seed's model around a tiny timm SwinV2: head shape, gray input, focal loss, unknown names."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from designclip.pipeline.train.sheet_transforms import SheetTransformSettings
from designclip.pipeline.train.timm_backbone import (
    SheetPreprocess,
    TimmLoadError,
    build_timm_arcface,
    focal_cross_entropy,
)
from torch import nn

TINY = {"embed_dim": 16, "depths": [1, 1], "num_heads": [1, 1], "img_size": 64, "window_size": 4}
SHEET = SheetPreprocess("higuchi", SheetTransformSettings(image_size=64))


def test_head_is_the_notebooks_and_embeddings_are_unit_length():
    model = build_timm_arcface("swinv2_tiny_window8_256", 5, timm_kwargs=TINY, sheet=SHEET)
    kinds = [type(m) for m in model.head]
    assert kinds == [nn.BatchNorm1d, nn.Dropout, nn.Linear, nn.BatchNorm1d, nn.PReLU]
    assert model.head[2].in_features == model.backbone.num_features and model.head[2].out_features == 512
    assert model.backbone.patch_embed.proj.in_channels == 1
    out = model.train()(torch.randn(4, 1, 64, 64), torch.tensor([0, 1, 2, -1]))
    assert out["logits"].shape == (4, 5)
    assert torch.allclose(out["embedding"].norm(dim=-1), torch.ones(4), atol=1e-5)
    assert model.margin.easy_margin and model.margin.s == 30.0 and list(model.head_modules()) == ["margin"]


def test_focal_loss_by_hand():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]]), torch.tensor([0, 0, -1])
    assert torch.isclose(focal_cross_entropy(logits, labels, 0.0), F.cross_entropy(logits[:2], labels[:2]))
    ce = F.cross_entropy(logits[:2], labels[:2], reduction="none")
    by_hand = ((1 - torch.exp(-ce)) ** 1.5 * ce).mean()
    assert torch.isclose(focal_cross_entropy(logits, labels, 1.5), by_hand)
    assert focal_cross_entropy(logits, labels, 1.5) < focal_cross_entropy(logits, labels, 0.0)
    assert focal_cross_entropy(logits, torch.tensor([-1, -1, -1]), 1.5) == 0


def test_unknown_timm_name_says_what_to_use():
    with pytest.raises(TimmLoadError, match="list_models"):
        build_timm_arcface("no_such_swin", 3, sheet=SHEET)
