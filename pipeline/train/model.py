"""DesignCLIP model and losses: open_clip towers + class head, class prompts, multi-view SupCon; ArcFace variant.

Input images are RGB tensors: patent drawings are single-channel, and the loader (and open_clip's own transforms,
which call `convert('RGB')`) replicate the gray channel three times, so any pretrained RGB tower can be used as is.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from designclip.pipeline.common.classes import us_design_class_titles
from designclip.pipeline.render.view_image import keep_ink as thicken_ink
from designclip.pipeline.train.gather import gather_batch
from designclip.pipeline.train.options import VIEW_TEMPERATURE, LossWeights  # noqa: F401 (re-exported)
from PIL import Image
from torch import Tensor, nn

DEFAULT_PROMPT_TEMPLATE = "a patent drawing of {title}"
MAX_LOGIT_SCALE = 100.0  # open_clip's training clamp (ln 100 on the parameter)
IGNORE = -1  # label value for "unknown" (cls, locarno, patent)


class ModelLoadError(RuntimeError):
    """An open_clip model or its weights could not be built or fetched; the message says what to do."""


@dataclass(frozen=True)
class ViewPreprocess:
    """A view's steps before open_clip's transform; the export records them so evaluation sees training's input."""

    keep_ink: bool
    input_size: int

    def wrap(self, transform: Callable[[Image.Image], Tensor]) -> Callable[[Image.Image], Tensor]:
        """`transform` after the ink-keeping min-pool (when on), so thin lines survive the downscale to input_size."""
        if not self.keep_ink:
            return transform
        size = self.input_size

        def apply(image: Image.Image) -> Tensor:
            return transform(thicken_ink(image, size))

        return apply

    def record(self) -> dict[str, Any]:
        return asdict(self)


def input_size(clip: nn.Module) -> int:
    """The square side the image tower takes (open_clip keeps it on the visual tower)."""
    size = getattr(getattr(clip, "visual", None), "image_size", 224)
    return int(size[0] if isinstance(size, tuple | list) else size)


# --------------------------------------------------------------------------------------------------- building


def us_class_index() -> dict[str, int]:
    """US design class code -> head index, the same order as `render.patent_views.class_index()` (no render import)."""
    return {code: i for i, code in enumerate(us_design_class_titles())}


def _config_name(model_config: dict[str, Any]) -> str:
    """A stable registry name for a config dict, so identical configs share one entry."""
    digest = hashlib.sha1(json.dumps(model_config, sort_keys=True).encode()).hexdigest()[:12]
    return f"designclip-custom-{digest}"


def register_model_config(model_config: dict[str, Any], name: str | None = None) -> str:
    """Register a config dict with open_clip (3.3 reads configs only from files, via `add_model_config`).

    Returns the registered name: `name` when it is free or already holds this config, otherwise a content-hash
    name (so a custom config never shadows a built-in such as ViT-B-16).
    """
    if not all(k in model_config for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ValueError("an open_clip model config needs embed_dim, vision_cfg and text_cfg")
    model_config = json.loads(json.dumps(model_config))  # what the registry will hold (tuples -> lists)
    if name is None or (name in open_clip.list_models() and open_clip.get_model_config(name) != model_config):
        name = _config_name(model_config)
    if name in open_clip.list_models():
        return name
    with tempfile.TemporaryDirectory(prefix="designclip-cfg-") as tmp:
        path = Path(tmp) / f"{name}.json"
        path.write_text(json.dumps(model_config))
        open_clip.add_model_config(path)  # the registry keeps the parsed dict after the file is gone
    return name


def pretrained_quick_gelu(model: str, pretrained: str | None) -> bool:
    """True when open_clip's pretrained tag says its weights were trained with QuickGELU (OpenAI, DFN, MetaCLIP...)."""
    if not pretrained or model.startswith(("local-dir:", "hf-hub:")):
        return False
    return bool((open_clip.get_pretrained_cfg(model, pretrained) or {}).get("quick_gelu"))


def resolve_model_config(model: str, model_config: dict[str, Any] | None = None,
                         image_size: int | None = None, pretrained: str | None = None) -> tuple[str, dict[str, Any]]:
    """(name open_clip should build, the exact model_cfg it will use) — the config is what export writes.

    The activation is part of the config: a pretrained tag trained with QuickGELU sets `quick_gelu`, so the model,
    its export and every reload run the activation the weights need (open_clip 3.x builds nn.GELU otherwise).
    """
    if model_config is not None:
        name = register_model_config(model_config, None if model.startswith(("local-dir:", "hf-hub:")) else model)
        cfg = deepcopy(model_config)
    else:
        name = model
        try:
            cfg = open_clip.get_model_config(model)
        except Exception as exc:  # hf-hub config fetch, unreadable local-dir
            raise ModelLoadError(f"could not read the open_clip config of {model!r}: {exc}") from exc
        if cfg is None:
            raise ModelLoadError(f"unknown open_clip model {model!r}; known: {', '.join(open_clip.list_models())}")
        cfg = deepcopy(cfg)
    if image_size is not None:
        cfg["vision_cfg"]["image_size"] = image_size
    if pretrained_quick_gelu(name, pretrained):
        cfg["quick_gelu"] = True
    return name, cfg


def build_clip(model: str, pretrained: str | None = None, model_config: dict[str, Any] | None = None,
               image_size: int | None = None, **open_clip_kwargs: Any
               ) -> tuple[nn.Module, Callable[..., Tensor], Callable[..., Tensor], Callable[..., Tensor]]:
    """(open_clip model, train transform, eval transform, tokenizer) for any open_clip name, hub/local dir or dict.

    The resolved config is kept on the model as `open_clip_cfg` so export can write it back out. `open_clip_kwargs`
    go to `open_clip.create_model_and_transforms` (aug_cfg, precision, cache_dir, pretrained_image, ...).
    """
    name, cfg = resolve_model_config(model, model_config, image_size, pretrained)
    try:
        clip, train_tf, eval_tf = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, force_image_size=image_size, force_quick_gelu=bool(cfg.get("quick_gelu")),
            **open_clip_kwargs)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as exc:
        where = f"pretrained={pretrained!r}" if pretrained else "its weights"
        raise ModelLoadError(
            f"could not build open_clip model {model!r} with {where}: {exc}. Hub weights (pretrained tags, hf-hub:) "
            "need network access: fetch them on a connected machine (they land in the HF cache) or export them "
            "to a folder and pass 'local-dir:PATH'.") from exc
    clip.open_clip_cfg = cfg
    return clip, train_tf, eval_tf, tokenizer


def _model_cfg_of(clip: nn.Module, model_cfg: dict[str, Any] | None) -> dict[str, Any]:
    """The open_clip config a wrapper needs (embed_dim, export); build_clip attaches it to the model."""
    cfg = model_cfg or getattr(clip, "open_clip_cfg", None)
    if cfg is None:
        raise ValueError("pass model_cfg= (or build the model with build_clip, which records it)")
    return cfg


# ------------------------------------------------------------------------------------------------- DesignCLIP


def class_prompts(class_titles: dict[str, str], template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """One text prompt per class, in head order; `{title}` and `{code}` are filled in."""
    return [template.format(title=title, code=code) for code, title in class_titles.items()]


class DesignClip(nn.Module):
    """open_clip model + US-class head (+ Locarno head) + class-prompt tokens for the prompt-contrastive term."""

    def __init__(self, clip: nn.Module, tokenizer: Callable[..., Tensor], *, num_locarno: int = 0,
                 prompt_template: str = DEFAULT_PROMPT_TEMPLATE, class_titles: dict[str, str] | None = None,
                 grad_checkpointing: bool = False, model_cfg: dict[str, Any] | None = None,
                 loss_weights: LossWeights | None = None, keep_ink: bool = True) -> None:
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.model_cfg = _model_cfg_of(clip, model_cfg)
        self.view_preprocess = ViewPreprocess(keep_ink, input_size(clip))
        self.embed_dim = int(self.model_cfg["embed_dim"])
        self.class_titles = dict(class_titles or us_design_class_titles())
        self.prompt_template = prompt_template
        self.loss_weights = loss_weights
        self.class_head = nn.Linear(self.embed_dim, len(self.class_titles))
        self.locarno_head = nn.Linear(self.embed_dim, num_locarno) if num_locarno > 0 else None
        tokens = tokenizer(class_prompts(self.class_titles, prompt_template))
        self.register_buffer("class_prompt_tokens", tokens, persistent=False)  # derived from titles + template
        if grad_checkpointing:
            clip.set_grad_checkpointing(True)

    @property
    def num_locarno(self) -> int:
        return 0 if self.locarno_head is None else self.locarno_head.out_features

    def head_modules(self) -> dict[str, nn.Module]:
        """The freshly initialised heads (their own LR group; also what export writes beside the open_clip file)."""
        heads: dict[str, nn.Module] = {"class_head": self.class_head}
        if self.locarno_head is not None:
            heads["locarno_head"] = self.locarno_head
        return heads

    def logit_scale(self) -> Tensor:
        """exp(open_clip's learnt log-scale), capped at 100 as open_clip training does."""
        return self.clip.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode_image(self, images: Tensor) -> Tensor:
        return self.clip.encode_image(images, normalize=True)

    def encode_text(self, texts: Tensor) -> Tensor:
        return self.clip.encode_text(texts, normalize=True)

    def _text_features(self, texts: Tensor | None, with_prompts: bool) -> tuple[Tensor | None, Tensor | None]:
        """Captions and class prompts through the text tower in one pass (each sequence is independent)."""
        parts = ([texts] if texts is not None else []) + ([self.class_prompt_tokens] if with_prompts else [])
        if not parts:
            return None, None
        feats = self.encode_text(torch.cat(parts))
        n = 0 if texts is None else texts.shape[0]
        return (feats[:n] if texts is not None else None), (feats[n:] if with_prompts else None)

    def forward(self, images: Tensor, texts: Tensor | None = None, *, with_prompts: bool = True) -> dict[str, Any]:
        """Keys: image_features, text_features, logit_scale, class_logits, locarno_logits, prompt_features.

        Features are L2-normalised; text_features is None without texts, prompt_features None unless
        with_prompts (pass `weights.prompt > 0`), locarno_logits None without a Locarno head.
        """
        image_features = self.encode_image(images)
        text_features, prompt_features = self._text_features(texts, with_prompts)
        return {
            "image_features": image_features,
            "text_features": text_features,
            "logit_scale": self.logit_scale(),
            "class_logits": self.class_head(image_features),
            "locarno_logits": None if self.locarno_head is None else self.locarno_head(image_features),
            "prompt_features": prompt_features,
        }


def clamp_logit_scale(model: nn.Module) -> None:
    """Clamp the log-scale parameter to [0, ln 100] after an optimizer step (open_clip's training rule)."""
    while isinstance(getattr(model, "module", None), nn.Module):  # DDP / accelerate wrappers
        model = model.module
    clip = model.clip if isinstance(model, DesignClip | ArcFaceModel) else model
    with torch.no_grad():
        clip.logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))


# ------------------------------------------------------------------------------------------------------ losses


def _masked_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy ignoring label -1; an all-unknown batch gives a graph-connected 0 (no NaN, DDP-safe)."""
    if not bool((labels != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)


def same_patent_elsewhere(patent: Tensor) -> Tensor:
    """(n, n) True where row and column are different views of one (known) patent: neither positive nor negative."""
    known = patent != IGNORE
    same = (patent[:, None] == patent[None, :]) & known[:, None] & known[None, :]
    return same & ~torch.eye(len(patent), dtype=torch.bool, device=patent.device)


def clip_contrastive(image_features: Tensor, text_features: Tensor, logit_scale: Tensor,
                     patent: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between each image and its own caption (the diagonal).

    With `patent`, the other views of a row's patent (and their captions) are masked out of its softmax: a batch
    holds two views per patent, and pushing them apart would fight the multi-view term.
    """
    logits = logit_scale * image_features.float() @ text_features.float().T
    if patent is not None:
        logits = logits.masked_fill(same_patent_elsewhere(patent), float("-inf"))
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def class_ce(class_logits: Tensor, labels: Tensor) -> Tensor:
    """Classification head cross-entropy (unknown class = -1 is ignored)."""
    return _masked_ce(class_logits, labels)


def prompt_contrastive(image_features: Tensor, prompt_features: Tensor, logit_scale: Tensor,
                       labels: Tensor) -> Tensor:
    """Zero-shot-style CE: each image against the class-prompt embeddings, target = its class."""
    logits = logit_scale * image_features.float() @ prompt_features.float().T
    return _masked_ce(logits, labels)


def multiview_supcon(image_features: Tensor, patent: Tensor, logit_scale: Tensor | float) -> Tensor:
    """Supervised contrastive loss: other views of the same patent are positives, the rest of the batch negatives.

    Anchors without a positive (single view, patent -1) are ignored; no positive at all gives a
    graph-connected 0.
    """
    eye = torch.eye(image_features.shape[0], dtype=torch.bool, device=patent.device)
    positives = same_patent_elsewhere(patent)
    anchors = positives.any(dim=1)
    if not bool(anchors.any()):
        return image_features.sum() * 0.0
    feats = image_features.float()
    sim = (logit_scale * feats @ feats.T).masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos_log_prob = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_log_prob[anchors] / positives[anchors].sum(dim=1)
    return per_anchor.mean()


def _need(out: dict[str, Any], key: str, term: str) -> Tensor:
    value = out.get(key)
    if value is None:
        raise ValueError(f"loss term {term!r} has a weight > 0 but the model output has no {key!r}")
    return value


def design_clip_loss(out: dict[str, Any], cls: Tensor, locarno: Tensor, patent: Tensor, weights: LossWeights,
                     view_temperature: float = VIEW_TEMPERATURE) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of the enabled terms over the global batch (every process's rows, see train_gather).

    Logs loss_clip/loss_cls/loss_prompt/loss_view/loss_locarno + logit_scale.
    """
    out, (cls, locarno, patent) = gather_batch(out, (cls, locarno, patent))
    scale = out["logit_scale"]
    terms: dict[str, Tensor] = {}
    if weights.clip > 0:
        terms["clip"] = clip_contrastive(out["image_features"], _need(out, "text_features", "clip"), scale, patent)
    if weights.cls > 0:
        terms["cls"] = class_ce(out["class_logits"], cls)
    if weights.prompt > 0:
        terms["prompt"] = prompt_contrastive(out["image_features"], _need(out, "prompt_features", "prompt"), scale, cls)
    if weights.view > 0:
        terms["view"] = multiview_supcon(out["image_features"], patent, 1.0 / view_temperature)
    if weights.locarno > 0:
        terms["locarno"] = class_ce(_need(out, "locarno_logits", "locarno"), locarno)
    if not terms:
        raise ValueError("every loss weight is 0: nothing to train")
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    logs = {f"loss_{name}": float(value.detach()) for name, value in terms.items()}
    logs["logit_scale"] = float(scale.detach())
    return total, logs


# ----------------------------------------------------------------------------------------------------- ArcFace


class ArcMarginHead(nn.Module):
    """Additive angular margin (ArcFace): s·cos(θ + m) on the target class, s·cos θ elsewhere."""

    def __init__(self, num_classes: int, dim: int = 512, s: float = 30.0, m: float = 0.5,
                 easy_margin: bool = False) -> None:
        super().__init__()
        self.num_classes, self.dim, self.s, self.m, self.easy_margin = num_classes, dim, s, m, easy_margin
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th = math.cos(math.pi - m)  # beyond θ = π - m, cos(θ + m) is no longer decreasing in θ
        self.mm = math.sin(math.pi - m) * m  # ... so use the linear fallback cos θ - m·sin m there

    def cosine(self, embedding: Tensor) -> Tensor:
        """cos θ between (normalised) embeddings and class centres, clamped away from ±1 for a finite sqrt."""
        cos = F.linear(F.normalize(embedding.float(), dim=-1), F.normalize(self.weight.float(), dim=-1))
        return cos.clamp(-1 + 1e-7, 1 - 1e-7)

    def forward(self, embedding: Tensor, labels: Tensor | None = None) -> Tensor:
        """Scaled logits; the margin is applied only where a label (>= 0) is given."""
        cos = self.cosine(embedding)
        if labels is None:
            return self.s * cos
        sin = torch.sqrt((1.0 - cos * cos).clamp(min=1e-12))
        phi = cos * self.cos_m - sin * self.sin_m
        phi = torch.where(cos > 0, phi, cos) if self.easy_margin else torch.where(cos > self.th, phi, cos - self.mm)
        known = labels != IGNORE
        target = F.one_hot(labels.clamp(min=0), self.num_classes).bool() & known[:, None]
        return self.s * torch.where(target, phi, cos)


class ArcFaceModel(nn.Module):
    """open_clip image tower (any config, timm-backed ones too) -> Linear (+BN) -> L2-normalised embedding.

    The whole open_clip model is kept (text tower frozen) so the export loads with plain open_clip.
    """

    def __init__(self, clip: nn.Module, num_classes: int, *, embed_dim: int = 512, batch_norm: bool = True,
                 s: float = 30.0, m: float = 0.5, easy_margin: bool = False, grad_checkpointing: bool = False,
                 model_cfg: dict[str, Any] | None = None, tokenizer: Callable[..., Tensor] | None = None,
                 keep_ink: bool = True) -> None:
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.model_cfg = _model_cfg_of(clip, model_cfg)
        self.view_preprocess = ViewPreprocess(keep_ink, input_size(clip))
        visual_out = int(getattr(clip.visual, "output_dim", None) or self.model_cfg["embed_dim"])
        self.embed_dim = embed_dim
        self.embed = nn.Linear(visual_out, embed_dim)
        self.bn = nn.BatchNorm1d(embed_dim) if batch_norm else None
        self.margin = ArcMarginHead(num_classes, embed_dim, s, m, easy_margin)
        for name, p in clip.named_parameters():
            if not name.startswith("visual."):
                p.requires_grad_(False)  # the text tower and logit scale take no part in ArcFace
        if grad_checkpointing:
            clip.visual.set_grad_checkpointing(True)

    @property
    def visual(self) -> nn.Module:
        return self.clip.visual

    def head_modules(self) -> dict[str, nn.Module]:
        """Embedding projection (+BN) and margin centres: new layers with their own LR group; exported separately."""
        heads: dict[str, nn.Module] = {"embed": self.embed}
        if self.bn is not None:
            heads["bn"] = self.bn
        heads["margin"] = self.margin
        return heads

    def encode_image(self, images: Tensor) -> Tensor:
        """The retrieval embedding: L2-normalised, `embed_dim` wide."""
        x = self.embed(self.clip.encode_image(images))
        if self.bn is not None:
            x = self.bn(x)
        return F.normalize(x, dim=-1)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """Keys: embedding (normalised) and logits (margin on the target when labels are given)."""
        embedding = self.encode_image(images)
        return {"embedding": embedding, "logits": self.margin(embedding, labels)}


def arcface_loss(model_out: dict[str, Tensor], labels: Tensor) -> Tensor:
    """Cross-entropy on the margin logits (labels -1 ignored)."""
    return _masked_ce(model_out["logits"], labels)


# ------------------------------------------------------------------------------------------------ optimisation


def _no_decay(name: str, param: Tensor) -> bool:
    """Norm weights, biases, scalars (logit_scale, class embedding) take no weight decay (open_clip's rule)."""
    return param.ndim < 2 or "logit_scale" in name


def _group(name: str, params: Iterable[Tensor], lr: float, weight_decay: float) -> dict[str, Any]:
    return {"name": name, "params": list(params), "lr": lr, "weight_decay": weight_decay}


def param_groups(model: DesignClip | ArcFaceModel, lr_backbone: float, lr_head: float,
                 weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: backbone vs new heads, each split decay / no-decay; every trainable parameter exactly once.

    The heads are included (the published DesignCLIP code built its head after the optimizer, so it never trained).
    """
    head_ids = {id(p) for mod in model.head_modules().values() for p in mod.parameters()}
    buckets: dict[tuple[bool, bool], list[Tensor]] = {(h, d): [] for h in (False, True) for d in (False, True)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            buckets[(id(param) in head_ids, not _no_decay(name, param))].append(param)
    groups = [
        _group("backbone_decay", buckets[(False, True)], lr_backbone, weight_decay),
        _group("backbone_no_decay", buckets[(False, False)], lr_backbone, 0.0),
        _group("head_decay", buckets[(True, True)], lr_head, weight_decay),
        _group("head_no_decay", buckets[(True, False)], lr_head, 0.0),
    ]
    return [g for g in groups if g["params"]]


# ---------------------------------------------------------------------------------------------------- factories


def build_design_clip(model: str, pretrained: str | None = None, model_config: dict[str, Any] | None = None,
                      image_size: int | None = None, *, num_locarno: int = 0,
                      prompt_template: str = DEFAULT_PROMPT_TEMPLATE, grad_checkpointing: bool = False,
                      loss_weights: LossWeights | None = None, keep_ink: bool = True, **open_clip_kwargs: Any
                      ) -> tuple[DesignClip, Callable[..., Tensor], Callable[..., Tensor], Callable[..., Tensor]]:
    """build_clip + DesignClip wrapper in one call (the training setup's entry point)."""
    clip, train_tf, eval_tf, tokenizer = build_clip(model, pretrained, model_config, image_size, **open_clip_kwargs)
    wrapped = DesignClip(clip, tokenizer, num_locarno=num_locarno, prompt_template=prompt_template,
                         grad_checkpointing=grad_checkpointing, loss_weights=loss_weights, keep_ink=keep_ink)
    return wrapped, train_tf, eval_tf, tokenizer


def build_arcface(model: str, num_classes: int, pretrained: str | None = None,
                  model_config: dict[str, Any] | None = None, image_size: int | None = None, *,
                  embed_dim: int = 512, batch_norm: bool = True, s: float = 30.0, m: float = 0.5,
                  easy_margin: bool = False, grad_checkpointing: bool = False, keep_ink: bool = True,
                  **open_clip_kwargs: Any) -> tuple[ArcFaceModel, Callable[..., Tensor], Callable[..., Tensor]]:
    """build_clip + ArcFaceModel in one call; returns (model, train transform, eval transform)."""
    clip, train_tf, eval_tf, tokenizer = build_clip(model, pretrained, model_config, image_size, **open_clip_kwargs)
    wrapped = ArcFaceModel(clip, num_classes, embed_dim=embed_dim, batch_norm=batch_norm, s=s, m=m,
                           easy_margin=easy_margin, grad_checkpointing=grad_checkpointing, tokenizer=tokenizer,
                           keep_ink=keep_ink)
    return wrapped, train_tf, eval_tf
