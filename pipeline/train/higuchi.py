"""The `higuchi` preset: the seed notebook's SwinV2 + ArcFace settings (Higuchi & Yanai, WPI 2023) as defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

from designclip.pipeline.train.options import TrainError, TrainOptions

HIGUCHI_MODEL = "swinv2_base_window12to24_192to384_22kft1k"  # the notebook's timm name (384 px, in_chans=1)

HIGUCHI = TrainOptions(
    model=HIGUCHI_MODEL, pretrained="default", objective="arcface", backbone="timm", preset="higuchi",
    batch_size=128, epochs=25.0, lr=1e-4, lr_head=5e-3, weight_decay=0.0, warmup_steps=0, grad_clip=0.0,
    arcface_s=30.0, arcface_m=0.5, easy_margin=True, focal_gamma=1.5, dropout=0.5, optimizer="adam",
    schedule="constant", keep_ink=False, views_per_patent=0)
"""Adam lr 1e-4 (backbone + head) / 5e-3 (ArcFace centres), batch 128, 25 epochs, s=30, m=0.5 easy margin,
focal gamma 1.5, no warmup, decay or clipping (the notebook has none); the sheet transforms are `sheet_transforms`'."""

PRESETS: dict[str, TrainOptions] = {"higuchi": HIGUCHI}


def preset_options(name: str, **explicit: Any) -> TrainOptions:
    """The preset's options with `explicit` fields (what the user set) on top."""
    if name not in PRESETS:
        raise TrainError(f"preset {name!r}: use one of {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **explicit)
