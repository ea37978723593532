"""What one training run learns (TrainOptions) and how its loop runs (LoopSettings), shared by setup and loop."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

OBJECTIVES = ("clip", "caption-only", "arcface")
PRECISIONS = ("auto", "bf16", "fp16", "no")
BACKBONES = ("open_clip", "timm")  # timm: ArcFace only, `model` is any timm name (the seed's SwinV2)
OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "constant")
VIEW_TEMPERATURE = 0.07  # SupCon's tau for the multi-view term (CLIP's learnt 0.01 is far too sharp for views)


@dataclass(frozen=True)
class LossWeights:
    """λ of each DesignCLIP loss term; a 0 switches the term off entirely (not computed, no gradient)."""

    clip: float = 1.0
    cls: float = 0.5
    prompt: float = 0.5
    view: float = 0.5
    locarno: float = 0.0

CAPTION_ONLY = LossWeights(clip=1.0, cls=0.0, prompt=0.0, view=0.0, locarno=0.0)  # IMPACT's plain CLIP fine-tune


class TrainError(ValueError):
    """Settings or inputs training cannot start from; the message says what to change."""


@dataclass(frozen=True)
class TrainOptions:
    """Everything that changes the trained weights (recorded in run.json; a resumed run must match)."""

    model: str = "ViT-B-16"
    pretrained: str | None = None
    model_config: dict[str, Any] | None = None  # a custom open_clip config (tests, the CPU main job)
    objective: str = "clip"
    weights: LossWeights = field(default_factory=LossWeights)
    batch_size: int = 64
    views_per_patent: int = 2
    steps: int | None = None  # None: `epochs` over the train split (sizes.json)
    epochs: float = 1.0
    lr: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 100
    grad_clip: float = 1.0
    precision: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    grad_checkpointing: bool = False
    seed: int = 0
    arcface_s: float = 30.0
    arcface_m: float = 0.5
    shuffle_patents: int = 256
    keep_ink: bool = True  # thicken strokes before downscaling views (thin lines vanish at 64-224 px otherwise)
    view_temperature: float = VIEW_TEMPERATURE  # the multi-view SupCon term's own tau
    backbone: str = "open_clip"
    timm_kwargs: dict[str, Any] | None = None  # extra timm.create_model arguments (tests: a tiny SwinV2)
    preset: str | None = None  # sheet transforms of pipeline.train.sheet_transforms (timm backbone), e.g. higuchi
    easy_margin: bool = False
    focal_gamma: float = 0.0  # ArcFace logits through a focal cross-entropy when > 0 (the seed: 1.5)
    dropout: float = 0.5  # the timm head's dropout
    image_size: int | None = None  # the timm sheet input side (None: the preset's, 384 for higuchi)
    optimizer: str = "adamw"
    schedule: str = "cosine"  # constant: no warmup or decay (the seed)

    def __post_init__(self) -> None:
        if self.objective == "caption-only":  # the objective is its weights: record what is trained, not the lambdas
            object.__setattr__(self, "weights", CAPTION_ONLY)

    def check(self) -> None:
        if self.objective not in OBJECTIVES:
            raise TrainError(f"objective {self.objective!r}: use one of {', '.join(OBJECTIVES)}")
        if self.batch_size < 2:
            raise TrainError("batch_size must be at least 2 (contrastive losses need negatives)")
        if self.steps is not None and self.steps < 1:
            raise TrainError("steps must be positive")
        if self.precision not in PRECISIONS:
            raise TrainError(f"precision {self.precision!r}: use auto, bf16, fp16 or no")
        if self.backbone not in BACKBONES:
            raise TrainError(f"backbone {self.backbone!r}: use one of {', '.join(BACKBONES)}")
        if self.backbone == "timm" and self.objective != "arcface":
            raise TrainError("a timm backbone trains with --objective arcface only (it has no text tower)")
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise TrainError(f"optimizer {self.optimizer!r} / schedule {self.schedule!r}: use one of "
                             f"{', '.join(OPTIMIZERS)} / {', '.join(SCHEDULES)}")
        if self.focal_gamma < 0:
            raise TrainError(f"focal_gamma {self.focal_gamma}: use 0 (plain cross-entropy) or more")
        if self.view_temperature <= 0:
            raise TrainError(f"view_temperature {self.view_temperature}: use a positive value (SupCon's is 0.07)")

    @property
    def contrastive(self) -> bool:
        """The DesignClip objectives (all terms, or the caption term alone) as opposed to ArcFace."""
        return self.objective in ("clip", "caption-only")

    def idle_parameters(self) -> bool:
        """True when a head or tower takes no part in the loss: only then must DDP search for unused parameters."""
        w = self.weights
        return self.contrastive and (w.cls == 0 or (w.clip == 0 and w.prompt == 0))

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LoopSettings:
    """How the loop runs, not what it learns (not part of run.json): logging, checkpoints, workers."""

    checkpoint_every: int = 500
    log_every: int = 10
    workers: int | None = None  # None: the CPUs per GPU process (2 on a CPU run, whose main process computes too)
    stop_after: int | None = None  # stop (as if killed) after this many steps; tests and time-boxed runs


DEFAULT_LOOP = LoopSettings()
