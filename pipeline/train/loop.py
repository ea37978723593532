"""The training loop: accelerate (1..N GPUs or CPU), bf16 autocast, cosine warmup, clipping, exact resume."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from designclip.pipeline.train.data import steps_per_epoch
from designclip.pipeline.train.model import VIEW_TEMPERATURE, LossWeights

OBJECTIVES = ("clip", "caption-only", "arcface")
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
        if self.precision not in ("auto", "bf16", "fp16", "no"):
            raise TrainError(f"precision {self.precision!r}: use auto, bf16, fp16 or no")
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


class CheckpointStore(Protocol):
    """Where a run keeps its checkpoints and metrics (designclip.storage.train_runs.TrainRun)."""

    def latest_checkpoint(self) -> tuple[Path, dict[str, Any]] | None: ...
    def checkpoint_tmp(self, step: int) -> Path: ...
    def commit_checkpoint(self, step: int, tmp: Path, state: dict[str, Any]) -> Path: ...
    def keep_metrics_until(self, step: int) -> None: ...
    def append_metrics(self, row: dict[str, Any]) -> None: ...


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warmup to 1, then cosine to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def loader_workers(requested: int | None, on_gpu: bool) -> int:
    """DataLoader processes per training process: as asked, else this machine's CPUs shared among its GPU processes."""
    if requested is not None:
        return max(0, requested)
    if not on_gpu:
        return 2
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def mixed_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return precision


@dataclass
class Meter:
    """Means of the loss terms since the last log line."""

    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    count: int = 0

    def add(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.sums[k] += float(v)
        self.count += 1

    def means(self) -> dict[str, float]:
        out = {k: round(v / max(1, self.count), 6) for k, v in self.sums.items()}
        self.sums, self.count = defaultdict(float), 0
        return out


def _checkpoint(accelerator: Any, store: CheckpointStore, step: int, state: dict[str, Any]) -> None:
    """Every process saves its part (RNG states are per process) into one folder; the main one commits it."""
    tmp = store.checkpoint_tmp(step)
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        store.commit_checkpoint(step, tmp, state)
    accelerator.wait_for_everyone()


def train(release_dir: str, store: CheckpointStore, options: TrainOptions, loop: LoopSettings = DEFAULT_LOOP,
          export: Callable[[Any, dict[str, Any]], None] | None = None,
          on_log: Callable[[dict[str, Any]], None] | None = None,
          logger: logging.Logger | logging.LoggerAdapter | None = None) -> dict[str, Any]:
    """Train on `release_dir`'s train split; resumes from the store's latest checkpoint; exports when finished."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from designclip.pipeline.train import setup as train_setup

    options.check()
    log = logger or logging.getLogger("designclip.train")
    unused = options.idle_parameters()
    accelerator = Accelerator(mixed_precision=mixed_precision(options.precision), cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused)])
    set_seed(options.seed)
    parts = train_setup.build(release_dir, options)
    global_batch = options.batch_size * accelerator.num_processes  # each process reads its own shards
    total_steps = options.steps or max(1, math.ceil(options.epochs * steps_per_epoch(parts.train_samples,
                                                                                     global_batch)))
    optimizer = torch.optim.AdamW(parts.param_groups, betas=(0.9, 0.98), eps=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total_steps, options.warmup_steps))
    model, optimizer = accelerator.prepare(parts.model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    step = 0
    latest = store.latest_checkpoint()
    if latest is not None:
        path, state = latest
        accelerator.load_state(str(path))
        step = int(state["step"])
        store.keep_metrics_until(step)
        log.info("resuming from %s (step %d of %d)", path.name, step, total_steps)
    loader = parts.loader(skip_batches=step, process_index=accelerator.process_index,
                          num_processes=accelerator.num_processes,
                          workers=loader_workers(loop.workers, accelerator.device.type == "cuda"))
    batches = iter(loader)
    meter, started, samples = Meter(), time.perf_counter(), 0
    model.train()
    last_row: dict[str, Any] = {}
    end = total_steps if loop.stop_after is None else min(total_steps, step + loop.stop_after)
    while step < end:
        batch = next(batches).to(accelerator.device)
        with accelerator.autocast():
            loss, terms = parts.loss(model, batch)
        accelerator.backward(loss)
        if options.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), options.grad_clip)
        optimizer.step()
        parts.after_step(accelerator.unwrap_model(model))
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        samples += batch.size * accelerator.num_processes
        meter.add({"loss": float(loss.detach()), **terms})
        if step % loop.log_every == 0 or step == total_steps:
            elapsed = time.perf_counter() - started
            last_row = {"step": step, "epoch": round(step * global_batch / max(1, parts.train_samples), 4),
                        "lr": scheduler.get_last_lr()[0], "samples_per_s": round(samples / elapsed, 2),
                        "elapsed_s": round(elapsed, 3),
                        **meter.means()}
            if accelerator.is_main_process:
                store.append_metrics(last_row)
                if on_log is not None:
                    on_log({**last_row, "total_steps": total_steps})
        if step % loop.checkpoint_every == 0 or step == total_steps:
            _checkpoint(accelerator, store, step, {"step": step, "total_steps": total_steps})
    result = {"step": step, "total_steps": total_steps, "finished": step >= total_steps,
              "train_samples": parts.train_samples, "last": last_row, "patents": len(parts.patents)}
    if result["finished"] and export is not None and accelerator.is_main_process:
        export(accelerator.unwrap_model(model), result)
    accelerator.wait_for_everyone()
    return result
