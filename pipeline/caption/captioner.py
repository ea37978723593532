"""The one small interface every caption backend implements (metadata, llava, vllm); backends.py builds one."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from designclip.storage.vocabulary import BACKENDS, CaptionRequest, CaptionResult

__all__ = ["BACKENDS", "DEFAULT_LLAVA_MODEL", "CaptionRequest", "CaptionResult", "Captioner", "CaptionerError",
           "GenerationSettings", "caption_set_id", "default_backend", "model_slug"]

DEFAULT_LLAVA_MODEL = "llava-hf/llava-1.5-7b-hf"


class CaptionerError(RuntimeError):
    """A backend cannot be built (missing extra, unknown model); the message says what to install or pass."""


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that changes a model's output (batch size does not: greedy results are batch-independent)."""

    max_new_tokens: int = 77
    min_new_tokens: int = 0  # > 0 forces a fixed length (benchmarks)
    do_sample: bool = False
    seed: int = 0
    max_words: int = 60
    dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    extra: dict[str, Any] = field(default_factory=dict)  # further `generate` keyword arguments (recorded)

    def record(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "min_new_tokens": self.min_new_tokens,
                "do_sample": self.do_sample, "seed": self.seed, "max_words": self.max_words,
                "dtype": self.dtype, **self.extra}


class Captioner(Protocol):
    """A caption backend: loaded once, then fed one shard's views at a time."""

    backend: str
    model_id: str
    prompt_version: str

    def settings(self) -> dict[str, Any]:
        """The settings that change the text (recorded with every caption, part of the caption set id)."""
        ...

    def caption(self, requests: Sequence[CaptionRequest]) -> Iterator[CaptionResult]:
        """Captions in request order, yielded batch by batch so the caller can checkpoint."""
        ...

    def close(self) -> None:
        """Free the model (GPU memory) when the stage is done."""
        ...


def model_slug(model_id: str) -> str:
    """`llava-hf/llava-1.5-7b-hf` -> `llava-1.5-7b-hf` (a local path -> its folder name)."""
    name = model_id.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-") or "model"


def caption_set_id(backend: str, model_id: str, prompt_version: str, settings: dict[str, Any]) -> str:
    """The folder name of one caption output: a different model, prompt or setting is a different set, never mixed."""
    if backend == "metadata":
        return prompt_version
    digest = hashlib.sha256(json.dumps({"model": model_id, **settings}, sort_keys=True).encode()).hexdigest()[:8]
    return f"{backend}-{model_slug(model_id)}-{prompt_version}-{digest}"


def caption_devices(backend: str) -> list[str | None]:
    """One llava captioner per CUDA GPU (each its own model copy, fed its own shards); one captioner otherwise."""
    if backend != "llava":
        return [None]
    import torch

    gpus = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(gpus)] if gpus > 1 else [None]


def default_backend() -> str:
    """llava where a CUDA GPU is present, the metadata captions everywhere else (the main job on a laptop)."""
    import torch

    return "llava" if torch.cuda.is_available() else "metadata"
