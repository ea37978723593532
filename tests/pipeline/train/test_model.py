"""DesignCLIP model, losses and export on a tiny random open_clip config fed real rendered patent views."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import open_clip
import pytest
import torch
from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.render.patent_views import RenderOptions, class_index, render_patent
from designclip.pipeline.train import export as train_export
from designclip.pipeline.train.export import ExportError, export_model, load_exported, read_export_meta
from designclip.pipeline.train.model import (
    ArcFaceModel,
    ArcMarginHead,
    DesignClip,
    LossWeights,
    ModelLoadError,
    arcface_loss,
    build_arcface,
    build_clip,
    build_design_clip,
    clamp_logit_scale,
    clip_contrastive,
    design_clip_loss,
    multiview_supcon,
    param_groups,
)
from PIL import Image

from tests.fixtures.render import fixture_input

TINY_NAME = "designclip-tiny-test"
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TINY_TIMM = {  # a timm-backed tower (timm's own tiny test net), built offline with random weights
    "embed_dim": 32,
    "vision_cfg": {"timm_model_name": "test_convnext", "timm_model_pretrained": False, "timm_pool": "avg",
                   "timm_proj": "linear", "image_size": 64},
    "text_cfg": TINY["text_cfg"],
}
PATENTS = (("USD0909824", 3), ("USD0913174", 3), ("USD0907292", 2))  # (patent, views used): 8 views, 3 classes
ONLY = {"clip": 0.0, "cls": 0.0, "prompt": 0.0, "view": 0.0, "locarno": 0.0}


def only(**weights: float) -> LossWeights:
    """LossWeights with every term off except the given ones."""
    return LossWeights(**{**ONLY, **weights})


@pytest.fixture(scope="module")
def views() -> list[tuple[Image.Image, dict[str, Any]]]:
    """Real views rendered from the sample patents at 64 px: (gray PIL image, view metadata)."""
    out = []
    for prefix, n in PATENTS:
        for sample in render_patent(fixture_input(prefix), RenderOptions(size=64)).samples[:n]:
            out.append((Image.open(io.BytesIO(sample.png)), sample.meta))
    return out


def tiny_clip(seed: int = 0, **kwargs: Any) -> tuple[DesignClip, Callable, Callable, Callable]:
    torch.manual_seed(seed)
    return build_design_clip(TINY_NAME, model_config=TINY, **kwargs)


def make_batch(views: list[tuple[Image.Image, dict[str, Any]]], transform: Callable,
               tokenizer: Callable) -> dict[str, torch.Tensor]:
    """images/texts/cls/locarno/patent as the loader delivers them (patent = index of the patent in this batch)."""
    patents = list(dict.fromkeys(meta["patent_id"] for _, meta in views))
    locarno = sorted(locarno_class_titles())  # the loader's locarno_index order
    return {
        "images": torch.stack([transform(image) for image, _ in views]),
        "texts": tokenizer([meta["caption_metadata"] for _, meta in views]),
        "cls": torch.tensor([meta["cls"] for _, meta in views]),
        "locarno": torch.tensor([locarno.index(meta["locarno_class"]) for _, meta in views]),
        "patent": torch.tensor([patents.index(meta["patent_id"]) for _, meta in views]),
    }


def loss_of(model: DesignClip, batch: dict[str, torch.Tensor], weights: LossWeights) -> tuple[torch.Tensor, dict]:
    out = model(batch["images"], batch["texts"], with_prompts=weights.prompt > 0)
    return design_clip_loss(out, batch["cls"], batch["locarno"], batch["patent"], weights)


def grad_norm(params: Any) -> float:
    """Total gradient norm (None grads count as 0)."""
    return sum(float(p.grad.norm()) for p in params if p.grad is not None)


def has_no_grad(params: Any) -> bool:
    return all(p.grad is None for p in params)


def text_tower(model: DesignClip) -> list[torch.nn.Parameter]:
    clip = model.clip
    return [clip.token_embedding.weight, clip.positional_embedding, *clip.transformer.parameters(),
            *clip.ln_final.parameters(), clip.text_projection]


@pytest.fixture(scope="module")
def setup(views) -> dict[str, Any]:
    """One tiny model + a fixed real batch (eval transform, so every step sees the same pixels)."""
    model, _, eval_tf, tokenizer = tiny_clip(num_locarno=len(locarno_class_titles()))
    return {"model": model, "eval_tf": eval_tf, "tokenizer": tokenizer,
            "batch": make_batch(views, eval_tf, tokenizer)}


# ------------------------------------------------------------------------------------------- building


def test_views_are_gray_and_the_transform_gives_rgb(views, setup):
    image, _ = views[0]
    assert image.mode == "L"
    images = setup["batch"]["images"]
    assert images.shape == (8, 3, 64, 64)
    mean, std = (torch.tensor(v)[:, None, None] for v in (open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD))
    pixels = images * std + mean  # undo the normalisation: the gray value sits in all three channels
    assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=1e-5)
    assert torch.allclose(pixels[:, 1], pixels[:, 2], atol=1e-5)


def test_class_prompts_follow_the_published_class_order(setup):
    model = setup["model"]
    assert list(model.class_titles) == list(class_index())
    assert model.class_head.out_features == 33 and model.class_prompt_tokens.shape == (33, 77)
    expected = setup["tokenizer"]([f"a patent drawing of {us_design_class_titles()['D7']}"])[0]
    assert torch.equal(model.class_prompt_tokens[class_index()["D7"]], expected)


def test_unknown_model_or_tag_raises_a_clear_error():
    with pytest.raises(ModelLoadError, match="unknown open_clip model"):
        build_clip("no-such-architecture")
    with pytest.raises(ModelLoadError, match="network"):
        build_clip(TINY_NAME, pretrained="no-such-tag", model_config=TINY)



def test_a_custom_config_never_shadows_a_builtin_name():
    before = open_clip.get_model_config("ViT-B-32")
    clip, _, _, _ = build_clip("ViT-B-32", model_config=TINY)
    assert clip.open_clip_cfg == TINY and clip.text_projection.shape == (64, 32)
    assert open_clip.get_model_config("ViT-B-32") == before


def test_image_size_override_and_grad_checkpointing(setup):
    model, _, eval_tf, _ = tiny_clip(image_size=32, grad_checkpointing=True)
    assert model.model_cfg["vision_cfg"]["image_size"] == 32
    assert model.clip.transformer.grad_checkpointing and model.clip.visual.transformer.grad_checkpointing
    images = torch.stack([eval_tf(Image.new("L", (50, 40), 255))] * 2)
    assert images.shape == (2, 3, 32, 32)
    out = model(images, setup["tokenizer"](["a", "b"]))
    loss, _ = design_clip_loss(out, torch.tensor([0, 1]), torch.tensor([-1, -1]), torch.tensor([0, 0]), LossWeights())
    loss.backward()
    assert grad_norm(model.clip.visual.parameters()) > 0


# ---------------------------------------------------------------------------------------------- losses


def test_clip_term_matches_open_clip_cliploss():
    torch.manual_seed(1)
    img, txt = (torch.nn.functional.normalize(torch.randn(6, 16), dim=-1) for _ in range(2))
    scale = torch.tensor(14.0)
    assert torch.allclose(clip_contrastive(img, txt, scale), open_clip.ClipLoss()(img, txt, scale), atol=1e-6)


def test_supcon_matches_a_hand_computation():
    f = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]), dim=-1)
    s = f @ f.T
    anchor0 = -(s[0, 1] - torch.log(torch.exp(s[0, 1]) + torch.exp(s[0, 2])))
    anchor1 = -(s[1, 0] - torch.log(torch.exp(s[1, 0]) + torch.exp(s[1, 2])))
    got = multiview_supcon(f, torch.tensor([5, 5, 7]), 1.0)  # the third view has no positive: not an anchor
    assert torch.allclose(got, (anchor0 + anchor1) / 2, atol=1e-6)
    assert float(multiview_supcon(f, torch.tensor([5, -1, -1]), 1.0)) == 0.0  # unknown patents never pair up


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_class_head_gets_gradient_iff_its_weight_is_positive(setup, lam):
    model, batch = setup["model"], setup["batch"]
    model.zero_grad(set_to_none=True)
    loss, logs = loss_of(model, batch, LossWeights(cls=lam))
    loss.backward()
    if lam > 0:
        assert grad_norm(model.class_head.parameters()) > 0 and "loss_cls" in logs
    else:
        assert has_no_grad(model.class_head.parameters()) and "loss_cls" not in logs


def test_prompt_term_alone_trains_the_text_tower(setup):
    model, batch = setup["model"], setup["batch"]
    model.zero_grad(set_to_none=True)
    loss, logs = loss_of(model, batch, only(prompt=1.0))
    loss.backward()
    assert set(logs) == {"loss_prompt", "logit_scale"}
    assert grad_norm(text_tower(model)) > 0  # the 33 prompts went through the text tower this step
    assert grad_norm(model.clip.visual.parameters()) > 0
    assert has_no_grad(model.class_head.parameters()) and has_no_grad(model.locarno_head.parameters())


def test_text_tower_gets_nothing_when_no_text_term_is_on(setup):
    model, batch = setup["model"], setup["batch"]
    model.zero_grad(set_to_none=True)
    loss, _ = loss_of(model, batch, only(cls=1.0, view=1.0))
    loss.backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in text_tower(model))


def test_multiview_term_alone_trains_the_image_tower_when_a_patent_has_two_views(setup):
    model, batch = setup["model"], setup["batch"]
    model.zero_grad(set_to_none=True)
    loss, logs = loss_of(model, batch, only(view=1.0))
    loss.backward()
    assert logs["loss_view"] > 0 and grad_norm(model.clip.visual.parameters()) > 0


def test_multiview_term_is_zero_without_positives(setup):
    model, batch = setup["model"], setup["batch"]
    model.zero_grad(set_to_none=True)
    one_view_each = [0, 3, 6]  # one view of each patent: no positives
    out = model(batch["images"][one_view_each], None, with_prompts=False)
    loss, logs = design_clip_loss(out, batch["cls"][one_view_each], batch["locarno"][one_view_each],
                                  batch["patent"][one_view_each], only(view=1.0))
    loss.backward()
    assert logs["loss_view"] == 0.0 and grad_norm(model.clip.visual.parameters()) == 0.0


def test_multiview_term_is_not_computed_when_its_weight_is_zero(setup, monkeypatch):
    def boom(*args: Any) -> None:
        raise AssertionError("multiview_supcon called with λ_view = 0")

    monkeypatch.setattr("designclip.pipeline.train.model.multiview_supcon", boom)
    _, logs = loss_of(setup["model"], setup["batch"], LossWeights(view=0.0))
    assert "loss_view" not in logs and {"loss_clip", "loss_cls", "loss_prompt"} <= set(logs)


def test_locarno_head_and_unknown_labels(setup):
    model, batch = setup["model"], setup["batch"]
    model.zero_grad(set_to_none=True)
    unknown = torch.full_like(batch["cls"], -1)
    out = model(batch["images"], batch["texts"])
    assert out["locarno_logits"].shape == (8, 32)
    loss, logs = design_clip_loss(out, unknown, batch["locarno"], batch["patent"], only(cls=1.0, locarno=1.0))
    loss.backward()
    assert logs["loss_cls"] == 0.0 and math.isfinite(logs["loss_locarno"])  # all-unknown batch: 0, not NaN
    assert grad_norm(model.locarno_head.parameters()) > 0 and grad_norm(model.class_head.parameters()) == 0.0
    with pytest.raises(ValueError, match="every loss weight is 0"):
        design_clip_loss(out, unknown, batch["locarno"], batch["patent"], only())


# ------------------------------------------------------------------------------------------ optimizer


def test_logit_scale_is_capped_at_100_in_forward_and_by_the_clamp():
    model, _, _, _ = tiny_clip()
    with torch.no_grad():
        model.clip.logit_scale.fill_(6.0)  # e^6 ≈ 403
    assert float(model.logit_scale().detach()) == pytest.approx(100.0)
    wrapper = torch.nn.Module()
    wrapper.module = model  # what DDP / accelerate hand back
    clamp_logit_scale(wrapper)
    assert float(model.clip.logit_scale.detach()) == pytest.approx(math.log(100.0))


def assert_groups_cover(model: torch.nn.Module, groups: list[dict[str, Any]]) -> None:
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}


def test_param_groups_cover_every_parameter_once_including_the_heads(setup):
    model = setup["model"]
    groups = param_groups(model, lr_backbone=1e-4, lr_head=1e-3, weight_decay=0.1)
    assert_groups_cover(model, groups)
    optimizer = torch.optim.AdamW(groups)
    in_optimizer = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    for head in (model.class_head, model.locarno_head):  # the published code's head never reached its optimizer
        assert in_optimizer[id(head.weight)]["lr"] == 1e-3 and in_optimizer[id(head.weight)]["weight_decay"] == 0.1
        assert in_optimizer[id(head.bias)]["weight_decay"] == 0.0
    assert in_optimizer[id(model.clip.logit_scale)]["weight_decay"] == 0.0
    assert in_optimizer[id(model.clip.ln_final.weight)]["weight_decay"] == 0.0
    assert in_optimizer[id(model.clip.visual.conv1.weight)] == {**in_optimizer[id(model.clip.visual.conv1.weight)],
                                                                "lr": 1e-4, "weight_decay": 0.1}


def test_arcface_param_groups_leave_out_the_frozen_text_tower():
    model, _, _ = build_arcface(TINY_NAME, 3, model_config=TINY)
    groups = param_groups(model, 1e-4, 1e-3, 0.05)
    assert_groups_cover(model, groups)
    heads = {id(p) for g in groups if g["name"].startswith("head") for p in g["params"]}
    assert heads == {id(p) for m in (model.embed, model.bn, model.margin) for p in m.parameters()}
    assert not model.clip.token_embedding.weight.requires_grad


# ------------------------------------------------------------------------------------ training + export


@pytest.fixture(scope="module")
def trained(views) -> dict[str, Any]:
    """A fresh tiny DesignClip after 30 AdamW steps on the fixed real batch, with its per-step loss terms."""
    model, _, eval_tf, tokenizer = tiny_clip(seed=3, loss_weights=LossWeights(locarno=0.2), num_locarno=32)
    batch = make_batch(views, eval_tf, tokenizer)
    optimizer = torch.optim.AdamW(param_groups(model, 1e-3, 1e-2, 0.01))
    history = []
    model.train()
    for _ in range(30):
        loss, terms = loss_of(model, batch, model.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"loss": float(loss.detach()), **terms})
    model.eval()
    return {"model": model, "batch": batch, "history": history, "eval_tf": eval_tf}


def mean_of(rows: list[dict[str, float]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def test_training_steps_lower_the_total_loss(trained):
    history = trained["history"]
    assert all(math.isfinite(v) for row in history for v in row.values())
    first, last = history[:3], history[-3:]
    assert mean_of(last, "loss") < 0.75 * mean_of(first, "loss"), [round(r["loss"], 3) for r in history]
    for term in ("loss_cls", "loss_prompt", "loss_locarno"):  # the heads and the prompt term learn fastest
        assert mean_of(last, term) < 0.5 * mean_of(first, term), term
    assert mean_of(last, "loss_clip") < mean_of(first, "loss_clip")


def test_image_tower_learns_to_group_the_views_of_a_patent(views):
    """The multiview term alone, at a backbone LR a random tower tolerates, pulls a patent's real views together."""
    model, _, eval_tf, tokenizer = tiny_clip(seed=3)
    batch = make_batch(views, eval_tf, tokenizer)
    optimizer = torch.optim.AdamW(param_groups(model, 1e-4, 1e-3, 0.0))
    history = []
    for _ in range(40):
        out = model(batch["images"], None, with_prompts=False)
        loss, terms = design_clip_loss(out, batch["cls"], batch["locarno"], batch["patent"], only(view=1.0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(terms["loss_view"])
    assert history[-1] < 0.85 * history[0], history


def test_export_loads_in_plain_open_clip_with_identical_embeddings(trained, views, tmp_path):
    model, batch = trained["model"], trained["batch"]
    folder = export_model(model, tmp_path / "model", TINY, {"run": "unit"})
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["open_clip_config.json", "open_clip_model.safetensors", "designclip_heads.safetensors", "designclip.json"])
    plain, _, plain_tf = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    plain_tok = open_clip.get_tokenizer(f"local-dir:{folder}")
    plain.eval()
    image = views[0][0]
    assert torch.equal(plain_tf(image), trained["eval_tf"](image))
    with torch.no_grad():
        out = model(batch["images"], batch["texts"])
        texts = plain_tok([meta["caption_metadata"] for _, meta in views])
        assert torch.allclose(plain.encode_image(batch["images"], normalize=True), out["image_features"], atol=1e-5)
        assert torch.allclose(plain.encode_text(texts, normalize=True), out["text_features"], atol=1e-5)
        assert torch.allclose(plain.logit_scale.exp(), out["logit_scale"])


def test_load_exported_restores_the_heads(trained, tmp_path):
    model, batch = trained["model"], trained["batch"]
    folder = export_model(model, tmp_path / "model", TINY_NAME, {"run": "unit"})
    meta = read_export_meta(folder)
    assert meta["objective"] == "clip" and meta["class_index"] == class_index() and meta["extra"] == {"run": "unit"}
    assert meta["loss_weights"] == {"clip": 1.0, "cls": 0.5, "prompt": 0.5, "view": 0.5, "locarno": 0.2}
    assert meta["locarno_index"] == {c: i for i, c in enumerate(sorted(locarno_class_titles()))}
    loaded = load_exported(folder)
    assert isinstance(loaded, DesignClip) and loaded.loss_weights == model.loss_weights
    with torch.no_grad():
        a, b = model(batch["images"], batch["texts"]), loaded(batch["images"], batch["texts"])
    for key in ("class_logits", "locarno_logits", "prompt_features", "image_features"):
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_interrupted_export_leaves_no_marker_and_no_temp_files(trained, tmp_path, monkeypatch):
    real = train_export._write_tensors

    def fail_on_heads(path: Path, tensors: dict[str, torch.Tensor]) -> None:
        if path.name == train_export.HEADS_FILE:
            raise OSError("disk full")
        real(path, tensors)

    monkeypatch.setattr(train_export, "_write_tensors", fail_on_heads)
    with pytest.raises(OSError):
        export_model(trained["model"], tmp_path, TINY, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["open_clip_config.json", "open_clip_model.safetensors"]
    with pytest.raises(ExportError, match="not a \\(complete\\)"):
        load_exported(tmp_path)


# ---------------------------------------------------------------------------------------------- ArcFace


def test_arc_margin_matches_a_hand_computation():
    head = ArcMarginHead(3, dim=2, s=30.0, m=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    theta = torch.tensor([0.3, 1.2, 3.0])  # the last is past π - m: the cos θ - m·sin m fallback
    emb = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    logits = head(emb, torch.tensor([0, 1, 0]))
    expected_target = 30 * torch.tensor([math.cos(0.3 + 0.5), math.cos(math.pi / 2 - 1.2 + 0.5),
                                         math.cos(3.0) - math.sin(math.pi - 0.5) * 0.5])
    assert torch.allclose(logits[[0, 1, 2], [0, 1, 0]], expected_target, atol=1e-4)
    plain = 30 * emb @ head.weight.T
    assert torch.allclose(logits[0, 1:], plain[0, 1:], atol=1e-4)  # other classes keep s·cos θ
    assert torch.allclose(head(emb, torch.tensor([-1, -1, -1])), plain, atol=1e-4)  # unknown: no margin
    easy = ArcMarginHead(3, dim=2, m=0.5, easy_margin=True)
    easy.load_state_dict(head.state_dict())
    assert torch.allclose(easy(emb, torch.tensor([0, 1, 0]))[2, 0], plain[2, 0], atol=1e-4)  # cos < 0: no margin


@pytest.mark.parametrize("config", [TINY, TINY_TIMM], ids=["vit", "timm"])
def test_arcface_trains_on_patent_identity_and_round_trips(views, tmp_path, config):
    torch.manual_seed(0)
    model, _, eval_tf = build_arcface(TINY_NAME if config is TINY else "designclip-tiny-timm-test", 3,
                                      model_config=config)
    batch = make_batch(views, eval_tf, open_clip.get_tokenizer(TINY_NAME))
    optimizer = torch.optim.AdamW(param_groups(model, 1e-3, 1e-2, 0.0))
    history = []
    model.train()
    for _ in range(25):
        loss = arcface_loss(model(batch["images"], batch["patent"]), batch["patent"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    assert sum(history[-3:]) / 3 < 0.5 * sum(history[:3]) / 3, history
    model.eval()
    folder = export_model(model, tmp_path / "arc", config, {"labels": "patent"})
    loaded = load_exported(folder)
    assert isinstance(loaded, ArcFaceModel) and read_export_meta(folder)["arcface"]["num_classes"] == 3
    with torch.no_grad():
        a, b = model(batch["images"], batch["patent"]), loaded(batch["images"], batch["patent"])
        plain, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
        assert torch.allclose(plain.eval().encode_image(batch["images"]), model.clip.encode_image(batch["images"]),
                              atol=1e-5)
    assert torch.allclose(a["embedding"], b["embedding"], atol=1e-5) and a["embedding"].shape == (8, 512)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-4)
    assert json.loads((folder / "designclip.json").read_text())["extra"] == {"labels": "patent"}
