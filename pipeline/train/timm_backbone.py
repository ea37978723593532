"""ArcFace on any timm backbone (the seed's SwinV2): gray input, BN-Dropout-Linear-BN-PReLU head, focal loss.

The seed (Higuchi & Yanai) trains `timm.create_model(name, in_chans=1, num_classes=0)` -> BN(F) -> Dropout ->
Linear(F, 512) -> BN(512) -> PReLU, with ArcFace logits and a focal cross-entropy. Its export holds the timm
backbone's state dict, the head and margin tensors, and in designclip.json the timm name/kwargs and the sheet
transform settings, so `export.load_exported` rebuilds it and evaluation preprocesses sheets as training did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from designclip.pipeline.train.model import IGNORE, ArcMarginHead
from designclip.pipeline.train.sheet_transforms import SheetTransformSettings, eval_transform
from PIL import Image
from torch import Tensor, nn


class TimmLoadError(RuntimeError):
    """A timm backbone could not be built; the message says what to do."""


@dataclass(frozen=True)
class SheetPreprocess:
    """The `view_preprocess` of a sheet model: its sheet transform settings stand in for open_clip's steps."""

    name: str
    settings: SheetTransformSettings

    @property
    def input_size(self) -> int:
        return self.settings.image_size

    def wrap(self, transform: Callable[[Image.Image], Tensor]) -> Callable[[Image.Image], Tensor]:
        """Nothing to add: the sheet transform already holds every step."""
        return transform

    def record(self) -> dict[str, Any]:
        """`preset` is what evaluation passes to `sheet_transforms.eval_transform` (name + every setting)."""
        return {"preset": {"name": self.name, **self.settings.record()}, "keep_ink": False,
                "input_size": self.input_size}


def build_timm_backbone(name: str, pretrained: bool = False, in_chans: int = 1,
                        kwargs: dict[str, Any] | None = None) -> nn.Module:
    """timm model `name` without its classifier (pooled features out); hub weights need a network."""
    import timm

    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **(kwargs or {}))
    except RuntimeError as exc:  # unknown name: timm raises RuntimeError('Unknown model ...')
        raise TimmLoadError(f"could not build timm model {name!r}: {exc}. Use a name from timm.list_models() "
                            "(e.g. swinv2_base_window12to24_192to384_22kft1k)") from exc
    except OSError as exc:  # hub download failure
        raise TimmLoadError(f"timm weights of {name!r} could not be fetched ({exc}): run once on a connected "
                            "machine (they land in the HF cache) or train with --pretrained unset") from exc


class TimmArcFaceModel(nn.Module):
    """timm backbone -> the seed's embedding head -> L2-normalised embedding; ArcFace margin centres on top."""

    def __init__(self, backbone: nn.Module, num_classes: int, *, timm_name: str, timm_kwargs: dict[str, Any] | None,
                 sheet: SheetPreprocess, embed_dim: int = 512, dropout: float = 0.5, s: float = 30.0,
                 m: float = 0.5, easy_margin: bool = True, in_chans: int = 1) -> None:
        super().__init__()
        self.backbone = backbone
        self.timm_name, self.timm_kwargs, self.in_chans = timm_name, dict(timm_kwargs or {}), in_chans
        features = int(backbone.num_features)
        self.head = nn.Sequential(nn.BatchNorm1d(features), nn.Dropout(dropout), nn.Linear(features, embed_dim),
                                  nn.BatchNorm1d(embed_dim), nn.PReLU())
        self.margin = ArcMarginHead(num_classes, embed_dim, s, m, easy_margin)
        self.embed_dim, self.dropout = embed_dim, dropout
        self.view_preprocess = sheet
        self.tokenizer = None

    def head_modules(self) -> dict[str, nn.Module]:
        """Only the margin centres take the head LR (the seed's second optimizer); the head learns with the backbone."""
        return {"margin": self.margin}

    def encode_image(self, images: Tensor) -> Tensor:
        """The retrieval embedding: the head's output, L2-normalised."""
        return F.normalize(self.head(self.backbone(images)).float(), dim=-1)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        embedding = self.encode_image(images)
        return {"embedding": embedding, "logits": self.margin(embedding, labels)}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if hasattr(self.backbone, "set_grad_checkpointing"):
            self.backbone.set_grad_checkpointing(enable)

    def meta(self) -> dict[str, Any]:
        """What designclip.json needs to rebuild this model (see export.load_exported)."""
        head = self.margin
        return {"backbone": "timm", "timm": {"name": self.timm_name, "kwargs": self.timm_kwargs,
                                              "in_chans": self.in_chans},
                "arcface": {"num_classes": head.num_classes, "embed_dim": self.embed_dim, "s": head.s, "m": head.m,
                            "easy_margin": head.easy_margin, "dropout": self.dropout,
                            "head": "bn-dropout-linear-bn-prelu"},
                "sheet_transforms": {"name": self.view_preprocess.name, **self.view_preprocess.settings.record()}}


def build_timm_arcface(name: str, num_classes: int, *, pretrained: bool = False,
                       timm_kwargs: dict[str, Any] | None = None, sheet: SheetPreprocess, embed_dim: int = 512,
                       dropout: float = 0.5, s: float = 30.0, m: float = 0.5, easy_margin: bool = True,
                       grad_checkpointing: bool = False) -> TimmArcFaceModel:
    """The seed's model around timm `name` (gray input when the sheet settings say 1 channel)."""
    in_chans = sheet.settings.channels
    backbone = build_timm_backbone(name, pretrained, in_chans, timm_kwargs)
    model = TimmArcFaceModel(backbone, num_classes, timm_name=name, timm_kwargs=timm_kwargs, sheet=sheet,
                             embed_dim=embed_dim, dropout=dropout, s=s, m=m, easy_margin=easy_margin,
                             in_chans=in_chans)
    if grad_checkpointing:
        model.set_grad_checkpointing(True)
    return model


def rebuild_from_meta(meta: dict[str, Any]) -> TimmArcFaceModel:
    """An untrained model of the exported shape (random backbone; the export's tensors are loaded after)."""
    t, a = meta["timm"], meta["arcface"]
    settings = dict(meta["sheet_transforms"])
    name = str(settings.pop("name"))
    sheet = SheetPreprocess(name, SheetTransformSettings.from_record(settings))
    backbone = build_timm_backbone(t["name"], False, int(t["in_chans"]), t.get("kwargs"))
    return TimmArcFaceModel(backbone, int(a["num_classes"]), timm_name=t["name"], timm_kwargs=t.get("kwargs"),
                            sheet=sheet, embed_dim=int(a["embed_dim"]), dropout=float(a["dropout"]),
                            s=float(a["s"]), m=float(a["m"]), easy_margin=bool(a["easy_margin"]),
                            in_chans=int(t["in_chans"]))


def sheet_eval_transform(model: TimmArcFaceModel) -> Callable[[Image.Image], Tensor]:
    """Evaluation's input for a sheet model: its recorded sheet settings' eval transform."""
    return eval_transform(model.view_preprocess.settings)


def focal_cross_entropy(logits: Tensor, labels: Tensor, gamma: float) -> Tensor:
    """Focal loss (1 - p_t)^gamma * CE, mean over known labels (-1 ignored); gamma 0 is plain cross-entropy."""
    known = labels != IGNORE
    if not bool(known.any()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits[known].float(), labels[known], reduction="none")
    if gamma == 0:
        return ce.mean()
    p = torch.exp(-ce)
    return ((1 - p) ** gamma * ce).mean()
