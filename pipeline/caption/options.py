"""The caption stage's options, declared once: the captioner spec, and the worker flags that carry it across."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.caption.captioner import GenerationSettings
from designclip.storage import layout


@dataclass(frozen=True)
class CaptionerSpec:
    """The caption stage's options: how to build a captioner (hashable, so Prefect tasks can take it), and which
    render profile's shards it captions."""

    backend: str = "metadata"
    model_id: str | None = None
    batch_size: int | None = None
    max_new_tokens: int = 77
    min_new_tokens: int = 0
    seed: int = 0
    device: str | None = None
    loader_workers: int = 2
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    profile: str = layout.DEFAULT_PROFILE

    def generation(self) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                                  seed=self.seed, extra=dict(self.extra))

    def cache_key(self) -> str:
        return json.dumps([self.backend, self.model_id, self.batch_size, self.max_new_tokens, self.min_new_tokens,
                           self.seed, self.device, self.loader_workers, list(self.extra)], default=str)


# The spec's fields as the multi-GPU worker's flags (device is each process's own, extra goes as JSON).
_FLAGS: tuple[tuple[str, str, type], ...] = (
    ("profile", "--profile", str), ("backend", "--captioner", str), ("model_id", "--model", str),
    ("batch_size", "--batch-size", int), ("max_new_tokens", "--max-new-tokens", int),
    ("min_new_tokens", "--min-new-tokens", int), ("seed", "--seed", int), ("loader_workers", "--loader-workers", int))


def worker_argv(spec: CaptionerSpec, data_root: str, start: dt.date, end: dt.date) -> list[str]:
    """The argv of `designclip.cli.caption_worker` that parses back into `spec` (less its device)."""
    argv = ["--data-root", data_root, "--weeks-from", start.isoformat(), "--weeks-to", end.isoformat()]
    for name, flag, _ in _FLAGS:
        value = getattr(spec, name)
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--generate-extra", json.dumps(dict(spec.extra))] if spec.extra else [])


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec's flags on a parser, with the spec's defaults (what `worker_argv` writes)."""
    defaults = CaptionerSpec()
    for name, flag, kind in _FLAGS:
        parser.add_argument(flag, dest=name, type=kind, default=getattr(defaults, name))
    parser.add_argument("--generate-extra", dest="extra", type=json.loads, default={},
                        help="further `generate` keyword arguments, as a JSON object")


def spec_from_args(args: argparse.Namespace, device: str | None = None) -> CaptionerSpec:
    """The spec the flags of `add_spec_arguments` describe, built for `device`."""
    return CaptionerSpec(**{name: getattr(args, name) for name, _, _ in _FLAGS}, device=device,
                         extra=tuple(args.extra.items()))
