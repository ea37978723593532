"""OpenAI-style weights run with QuickGELU: resolved from open_clip's pretrained-tag metadata, kept by export/reload."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import open_clip
import pytest
import torch
from designclip.pipeline.train.export import export_model, load_exported
from designclip.pipeline.train.model import DesignClip, build_clip, build_design_clip, resolve_model_config
from open_clip.transformer import QuickGELU
from torch import nn

from tests.pipeline.train.test_model import TINY


def activations(model: nn.Module) -> set[str]:
    """The activation classes a model's MLPs use (nn.GELU or open_clip's QuickGELU)."""
    return {type(m).__name__ for m in model.modules() if isinstance(m, nn.GELU | QuickGELU)}


@pytest.mark.parametrize(("model", "tag", "quick"), [
    ("ViT-B-16", "openai", True),  # the GPU profile's model and baseline
    ("ViT-B-32", "openai", True),  # DesignCLIP's "ViT-B"
    ("ViT-B-16", "dfn2b", True),
    ("ViT-B-32", "laion2b_s34b_b79k", False),  # trained with nn.GELU
    ("ViT-B-16", None, False),  # random init: the plain config
])
def test_the_pretrained_tag_decides_the_activation_in_the_config(model: str, tag: str | None, quick: bool) -> None:
    _, cfg = resolve_model_config(model, pretrained=tag)
    assert bool(cfg.get("quick_gelu")) is quick


def test_openai_vit_b_32_builds_with_quickgelu_and_the_wrapper_exports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real build path with pretrained='openai', offline: the weights fetch is stubbed and never read."""
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda *a, **kw: "offline-no-weights")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # open_clip warns "QuickGELU mismatch" when config and tag disagree
        clip, _, _, tokenizer = build_clip("ViT-B-32", "openai", load_weights=False)
    assert activations(clip) == {"QuickGELU"}
    wrapped = DesignClip(clip, tokenizer)
    assert wrapped.model_cfg["quick_gelu"] is True and wrapped.embed_dim == 512  # what export writes


def test_export_and_reload_keep_quickgelu(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, _, _, _ = build_design_clip("designclip-qg-test", model_config={**TINY, "quick_gelu": True})
    assert activations(model.clip) == {"QuickGELU"}
    out = export_model(model, tmp_path / "qg", "designclip-qg-test")
    assert json.loads((out / "open_clip_config.json").read_text())["model_cfg"]["quick_gelu"] is True
    plain, _, _ = open_clip.create_model_and_transforms(f"local-dir:{out}")
    reloaded = load_exported(out)
    assert activations(plain) == activations(reloaded.clip) == {"QuickGELU"}
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.eval().encode_image(images)
        assert torch.allclose(reloaded.encode_image(images), expected, atol=1e-6)
