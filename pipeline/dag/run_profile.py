"""The whole DAG's stage settings in one place, so a CPU laptop and a GPU server each get sizes that fit them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.train.model_configs import TINY_MODEL, tiny_model_config


class ProfileError(ValueError):
    """A setting the DAG cannot use; the message lists the valid ones."""


@dataclass(frozen=True)
class RunProfile:
    """What each stage of the DAG runs with: captioner, model and training size, evaluation baseline."""

    gpu: bool
    reason: str
    render_size: int = 512
    captioner: str = "metadata"
    caption_model: str | None = None
    caption_batch_size: int | None = None
    model: str = TINY_MODEL
    model_config: dict[str, Any] | None = None
    pretrained: str | None = None
    batch_size: int = 16
    steps: int | None = 40
    epochs: float = 1.0
    warmup_steps: int = 5
    lr: float = 5e-4
    lr_head: float = 5e-3
    checkpoint_every: int = 20
    log_every: int = 5
    embed_batch_size: int = 64
    baseline: str | None = TINY_MODEL
    baseline_pretrained: str | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def size_profile(self) -> str:
        """The render profile name the data stages write under (`px512`)."""
        return f"px{self.render_size}"

    def train_options(self) -> Any:
        """designclip.pipeline.train.options.TrainOptions of the train stage."""
        from designclip.pipeline.train.options import TrainOptions

        return TrainOptions(model=self.model, pretrained=self.pretrained, model_config=self.model_config,
                            batch_size=self.batch_size, steps=self.steps, epochs=self.epochs,
                            warmup_steps=self.warmup_steps, lr=self.lr, lr_head=self.lr_head)

    def loop_settings(self) -> Any:
        """designclip.pipeline.train.options.LoopSettings of the train stage (checkpoints and log lines)."""
        from designclip.pipeline.train.options import LoopSettings

        return LoopSettings(checkpoint_every=self.checkpoint_every, log_every=self.log_every)

    def with_options(self, **changes: Any) -> RunProfile:
        """A copy with the given settings changed (None values are ignored); the log names what was changed."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ProfileError(f"unknown run settings: {', '.join(unknown)}")
        if not given:
            return self
        changed = tuple(dict.fromkeys([*self.overrides, *sorted(given)]))
        if given.get("model") and given["model"] != self.model and "model_config" not in given:
            given["model_config"] = tiny_model_config() if given["model"] == TINY_MODEL else None
        return dataclasses.replace(self, **given, overrides=changed)

    def describe(self) -> str:
        """One log line: which settings were picked and why."""
        steps = f"{self.steps} steps" if self.steps else f"{self.epochs:g} epoch(s)"
        model = self.model + (f" ({self.pretrained})" if self.pretrained else "")
        told = f"; set by the command line: {', '.join(self.overrides)}" if self.overrides else ""
        return (f"{'GPU' if self.gpu else 'CPU'} profile ({self.reason}): {self.captioner} captions, {model}, "
                f"{steps} at batch {self.batch_size}, baseline {self.baseline or 'none'}{told}")

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def default_profile(gpu: bool | None = None) -> RunProfile:
    """CPU: metadata captions, the tiny CLIP for 40 steps; GPU: LLaVA captions, ViT-B-16 (openai) for a full epoch.

    For the like-for-like DesignCLIP row pass `--model ViT-B-32` (its "ViT-B": 512-d, openai weights, QuickGELU).
    """
    if gpu is None:
        gpu = cuda_available()
        reason = "a CUDA GPU is present" if gpu else "no CUDA GPU found"
    else:
        reason = "asked for"
    if not gpu:
        return RunProfile(gpu=False, reason=reason, model_config=tiny_model_config())
    return RunProfile(gpu=True, reason=reason, captioner="llava", model="ViT-B-16", pretrained="openai",
                      batch_size=64, steps=None, epochs=1.0, warmup_steps=100, lr=5e-5, lr_head=1e-3,
                      checkpoint_every=500, log_every=10, baseline="ViT-B-16", baseline_pretrained="openai")


def profile_from_record(record: dict[str, Any] | RunProfile | None) -> RunProfile | None:
    """A profile back from its stored parameters (a Prefect flow run keeps them as JSON)."""
    if record is None or isinstance(record, RunProfile):
        return record
    known = {f.name for f in dataclasses.fields(RunProfile)}
    values = {k: v for k, v in record.items() if k in known}
    values["overrides"] = tuple(values.get("overrides") or ())
    return RunProfile(**values)
