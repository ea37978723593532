"""The CLIP term leaves a patent's other views out of its negatives; the multi-view term has its own temperature."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from designclip.pipeline.train.model import clip_contrastive, design_clip_loss, multiview_supcon

from tests.pipeline.train.test_model import make_batch, only, tiny_clip, views  # noqa: F401 - views is a fixture

PAIRS = (0, 1, 3, 4, 6, 7)  # two views each of the three patents in `views`


def test_two_views_of_a_patent_with_equal_captions_are_not_each_others_negatives() -> None:
    torch.manual_seed(0)
    image = F.normalize(torch.randn(3, 16), dim=-1).repeat_interleave(2, dim=0)  # 3 patents x 2 identical views
    text = image.clone()  # each view's caption is its patent's caption
    patent = torch.tensor([0, 0, 1, 1, 2, 2])
    scale = torch.tensor(100.0)
    assert clip_contrastive(image, text, scale) >= math.log(2) - 1e-6, "arange targets: the twin caption ties"
    assert clip_contrastive(image, text, scale, patent) < 1e-3
    unknown = torch.full_like(patent, -1)  # patents the loader could not index keep the plain diagonal
    assert torch.allclose(clip_contrastive(image, text, scale, unknown), clip_contrastive(image, text, scale))


def test_training_on_two_views_per_patent_with_equal_captions_gets_below_log_2(views) -> None:  # noqa: F811
    """Free image/caption embeddings trained by the real loss: with twins as negatives it can never pass log 2."""
    model, _, eval_tf, tokenizer = tiny_clip(seed=0)
    pairs = [views[i] for i in PAIRS]
    captions = {meta["patent_id"]: meta["caption_metadata"] for _, meta in reversed(pairs)}
    batch = make_batch([(image, {**meta, "caption_metadata": captions[meta["patent_id"]]}) for image, meta in pairs],
                       eval_tf, tokenizer)
    assert batch["texts"][0].equal(batch["texts"][1]) and not batch["texts"][0].equal(batch["texts"][2])
    with torch.no_grad():
        start = model(batch["images"], batch["texts"], with_prompts=False)
    image = torch.nn.Parameter(start["image_features"].clone())
    caption = torch.nn.Parameter(start["text_features"][::2].clone())  # one embedding per distinct caption
    optimizer = torch.optim.Adam([image, caption], lr=0.05)
    losses = []
    for _ in range(60):
        out = {**start, "image_features": F.normalize(image, dim=-1),
               "text_features": F.normalize(caption, dim=-1).repeat_interleave(2, dim=0)}
        loss, _ = design_clip_loss(out, batch["cls"], batch["locarno"], batch["patent"], only(clip=1.0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 < math.log(2) < losses[0], losses[::10]


def test_the_multiview_term_uses_its_own_temperature_not_the_clip_scale() -> None:
    torch.manual_seed(0)
    patent = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])  # the three sample patents' views, as in `views`
    feats = F.normalize(torch.randn(8, 16), dim=-1)
    out = {"image_features": feats, "text_features": None, "logit_scale": torch.tensor(100.0),  # a pretrained scale
           "class_logits": torch.zeros(8, 3), "locarno_logits": None, "prompt_features": None}
    labels = torch.full((8,), -1)
    _, logs = design_clip_loss(out, labels, labels, patent, only(view=1.0))
    assert math.isclose(logs["loss_view"], float(multiview_supcon(feats, patent, 1 / 0.07)), rel_tol=1e-6)
    assert abs(logs["loss_view"] - float(multiview_supcon(feats, patent, 100.0))) > 0.1
    _, sharper = design_clip_loss(out, labels, labels, patent, only(view=1.0), view_temperature=0.01)
    assert math.isclose(sharper["loss_view"], float(multiview_supcon(feats, patent, 100.0)), rel_tol=1e-6)
