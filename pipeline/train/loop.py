"""The training loop: accelerate (1..N GPUs or CPU), bf16 autocast, cosine warmup, clipping, exact resume."""

from __future__ import annotations

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
from designclip.pipeline.train import setup as train_setup
from designclip.pipeline.train.data import steps_per_epoch
from designclip.pipeline.train.options import (  # noqa: F401 (TrainError: callers import the options from here)
    DEFAULT_LOOP,
    LoopSettings,
    TrainError,
    TrainOptions,
)


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


def make_optimizer(options: TrainOptions, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """AdamW with open_clip's betas, or plain Adam (the seed's) with torch's defaults."""
    if options.optimizer == "adam":
        return torch.optim.Adam(groups)
    return torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6)


def lr_factor(options: TrainOptions, total_steps: int) -> Callable[[int], float]:
    """The LR multiplier of `options.schedule`: cosine with warmup, or constant 1."""
    if options.schedule == "constant":
        return lambda _step: 1.0
    return cosine_with_warmup(total_steps, options.warmup_steps)


def train(release_dir: str, store: CheckpointStore, options: TrainOptions, loop: LoopSettings = DEFAULT_LOOP,
          export: Callable[[Any, dict[str, Any]], None] | None = None,
          on_log: Callable[[dict[str, Any]], None] | None = None,
          logger: logging.Logger | logging.LoggerAdapter | None = None,
          build_parts: Callable[[str, TrainOptions], Any] | None = None) -> dict[str, Any]:
    """Train on `release_dir`'s train split (or what `build_parts` makes of it, e.g. a DeepPatent folder); resumes
    from the store's latest checkpoint; exports when finished."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    options.check()
    log = logger or logging.getLogger("designclip.train")
    unused = options.idle_parameters()
    accelerator = Accelerator(mixed_precision=mixed_precision(options.precision), cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused)])
    set_seed(options.seed)
    parts = (build_parts or train_setup.build)(release_dir, options)
    global_batch = options.batch_size * accelerator.num_processes  # each process reads its own shards
    total_steps = options.steps or max(1, math.ceil(options.epochs * steps_per_epoch(parts.train_samples,
                                                                                     global_batch)))
    optimizer = make_optimizer(options, parts.param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(options, total_steps))
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
