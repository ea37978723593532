"""The whole DAG's stage settings in one place, so a CPU laptop and a GPU server each get sizes that fit them.

A profile holds the stages' own option objects (the caption stage's `CaptionerSpec`, the train stage's
`TrainOptions` and `LoopSettings`); their defaults live in those classes, and the CPU profile says only what it
changes. The command line's overrides go into the option they belong to.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.caption.options import CaptionerSpec
from designclip.pipeline.train.model_configs import TINY_MODEL, tiny_model_config
from designclip.pipeline.train.options import LoopSettings, TrainOptions


class ProfileError(ValueError):
    """A setting the DAG cannot use; the message lists the valid ones."""


# Command-line names of the caption stage's options (`designclip run --captioner llava --caption-model …`).
_CAPTION_ALIASES = {"captioner": "backend", "caption_model": "model_id", "caption_batch_size": "batch_size"}


@dataclass(frozen=True)
class RunProfile:
    """What each stage of the DAG runs with: render size, captioner, training, embedding batch, baseline."""

    gpu: bool
    reason: str
    render_size: int = 512
    caption: CaptionerSpec = field(default_factory=CaptionerSpec)
    train: TrainOptions = field(default_factory=TrainOptions)
    loop: LoopSettings = field(default_factory=LoopSettings)
    embed_batch_size: int = 64
    baseline: str | None = TINY_MODEL
    baseline_pretrained: str | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def size_profile(self) -> str:
        """The render profile name the data stages write under (`px512`)."""
        return f"px{self.render_size}"

    def with_options(self, **changes: Any) -> RunProfile:
        """A copy with the given settings changed (None values are ignored); the log names what was changed.

        A setting is a field of the profile, of the train options or loop settings (`steps`, `lr`, ...), or a caption
        option by its command-line name (`captioner`, `caption_model`, `caption_batch_size`).
        """
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self
        changed = tuple(dict.fromkeys([*self.overrides, *sorted(given)]))
        if given.get("model") and given["model"] != self.train.model and "model_config" not in given:
            given["model_config"] = tiny_model_config() if given["model"] == TINY_MODEL else None
        return dataclasses.replace(_apply(self, given), overrides=changed)

    def describe(self) -> str:
        """One log line: which settings were picked and why."""
        t = self.train
        steps = f"{t.steps} steps" if t.steps else f"{t.epochs:g} epoch(s)"
        model = t.model + (f" ({t.pretrained})" if t.pretrained else "")
        told = f"; set by the command line: {', '.join(self.overrides)}" if self.overrides else ""
        return (f"{'GPU' if self.gpu else 'CPU'} profile ({self.reason}): {self.caption.backend} captions, {model}, "
                f"{steps} at batch {t.batch_size}, baseline {self.baseline or 'none'}{told}")

    def record(self) -> dict[str, Any]:
        """JSON-able parameters (a Prefect flow run keeps them; `profile_from_record` reads them back)."""
        return dataclasses.asdict(self)


def _apply(profile: RunProfile, given: dict[str, Any]) -> RunProfile:
    """`profile` with each setting put into the option object it belongs to."""
    nested = {"caption": {}, "train": {}, "loop": {}}
    top: dict[str, Any] = {}
    train_fields = {f.name for f in dataclasses.fields(TrainOptions)}
    loop_fields = {f.name for f in dataclasses.fields(LoopSettings)}
    top_fields = {f.name for f in dataclasses.fields(RunProfile)} - set(nested)
    for name, value in given.items():
        if name in _CAPTION_ALIASES:
            nested["caption"][_CAPTION_ALIASES[name]] = value
        elif name in top_fields:
            top[name] = value
        elif name in train_fields:
            nested["train"][name] = value
        elif name in loop_fields:
            nested["loop"][name] = value
        else:
            known = sorted(top_fields | train_fields | loop_fields | set(_CAPTION_ALIASES))
            raise ProfileError(f"unknown run setting {name!r}: use one of {', '.join(known)}")
    for part, values in nested.items():
        if values:
            top[part] = dataclasses.replace(getattr(profile, part), **values)
    return dataclasses.replace(profile, **top)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def default_profile(gpu: bool | None = None) -> RunProfile:
    """CPU: metadata captions, the tiny CLIP for 40 steps; GPU: LLaVA captions, ViT-B-16 (openai) for a full epoch.

    The GPU profile is the stages' own defaults plus OpenAI weights and LLaVA. For the like-for-like DesignCLIP row
    pass `--model ViT-B-32` (its "ViT-B": 512-d, openai weights, QuickGELU).
    """
    if gpu is None:
        gpu = cuda_available()
        reason = "a CUDA GPU is present" if gpu else "no CUDA GPU found"
    else:
        reason = "asked for"
    if not gpu:
        train = TrainOptions(model=TINY_MODEL, model_config=tiny_model_config(), batch_size=16, steps=40,
                             warmup_steps=5, lr=5e-4, lr_head=5e-3)
        return RunProfile(gpu=False, reason=reason, train=train, loop=LoopSettings(checkpoint_every=20, log_every=5))
    return RunProfile(gpu=True, reason=reason, caption=CaptionerSpec(backend="llava"),
                      train=TrainOptions(pretrained="openai"), baseline="ViT-B-16", baseline_pretrained="openai")


def _build(cls: type, values: dict[str, Any]) -> Any:
    """A (nested) dataclass back from `dataclasses.asdict` output that went through JSON (lists for tuples)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value, kind = values[f.name], hints[f.name]
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            value = _build(kind, value)
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    return cls(**kwargs)


def profile_from_record(record: dict[str, Any] | RunProfile | None) -> RunProfile | None:
    """A profile back from its stored parameters (a Prefect flow run keeps them as JSON).

    Records from before the profile held option objects (flat `model`, `steps`, ... keys) are read too.
    """
    if record is None or isinstance(record, RunProfile):
        return record
    if "train" in record:
        return _build(RunProfile, record)
    flat = {k: v for k, v in record.items() if k not in ("gpu", "reason", "overrides")}
    base = RunProfile(gpu=bool(record.get("gpu")), reason=str(record.get("reason", "")),
                      overrides=tuple(record.get("overrides") or ()))
    return _apply(base, {k: v for k, v in flat.items() if v is not None or k in ("steps", "pretrained", "baseline")})
