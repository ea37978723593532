"""Several processes train as one: the loss and update of 2 gloo processes equal one process on the global batch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from designclip.pipeline.common.classes import locarno_class_titles
from designclip.pipeline.train import loop as train_loop
from designclip.pipeline.train.loop import TrainOptions, loader_workers
from designclip.pipeline.train.model import LossWeights, design_clip_loss

from tests.pipeline.train.test_model import make_batch, tiny_clip, views  # noqa: F401 - views is a fixture

ALL_TERMS = LossWeights(clip=1.0, cls=0.5, prompt=0.5, view=0.5, locarno=0.2)
SPLIT = (5, 3)  # rows per process: unequal on purpose (a view that fails to decode shrinks one batch)


def step(model: torch.nn.Module, batch: dict[str, torch.Tensor], rows: slice) -> tuple[float, dict[str, float]]:
    """Forward + backward of one process's rows; returns the loss and its logged terms."""
    out = model(batch["images"][rows], batch["texts"][rows], with_prompts=True)
    loss, logs = design_clip_loss(out, batch["cls"][rows], batch["locarno"][rows], batch["patent"][rows], ALL_TERMS)
    loss.backward()
    return float(loss.detach()), logs


def fresh_model() -> tuple[torch.nn.Module, Any, Any, Any]:
    """The same seeded tiny DesignClip (with a Locarno head) in every process."""
    return tiny_clip(seed=5, num_locarno=len(locarno_class_titles()), loss_weights=ALL_TERMS)


def run_rank(rank: int, world: int, folder: str) -> None:
    """One process: its rows of the saved global batch, then DDP's gradient average, then save what it got."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        batch = torch.load(f"{folder}/batch.pt")
        start = sum(SPLIT[:rank])
        model = fresh_model()[0]
        loss, logs = step(model, batch, slice(start, start + SPLIT[rank]))
        grads = {}
        for name, p in model.named_parameters():
            dist.all_reduce(p.grad)  # what DDP does after backward: average the gradients
            grads[name] = p.grad / world
        torch.save({"loss": loss, "logs": logs, "grads": grads}, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_give_the_loss_and_update_of_one_process_on_the_global_batch(
        views, tmp_path: Path) -> None:  # noqa: F811
    model, _, eval_tf, tokenizer = fresh_model()
    batch = make_batch(views, eval_tf, tokenizer)
    assert len(views) == sum(SPLIT) and set(batch["patent"][:5].tolist()) & set(batch["patent"][5:].tolist()), \
        "a patent's views sit on both processes, so the multi-view term needs the gather"
    torch.save(batch, tmp_path / "batch.pt")
    loss, logs = step(model, batch, slice(None))
    mp.spawn(run_rank, args=(2, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert math.isclose(got["loss"], loss, rel_tol=1e-5), (rank, got["logs"], logs)
        assert got["logs"].keys() == logs.keys() and all(math.isclose(got["logs"][k], v, rel_tol=1e-5, abs_tol=1e-6)
                                                         for k, v in logs.items())
        for name, p in model.named_parameters():
            assert torch.allclose(got["grads"][name], p.grad, rtol=1e-4, atol=1e-6), name


def test_loader_workers_default_to_the_cpus_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_loop.os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert loader_workers(None, on_gpu=True) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert loader_workers(None, on_gpu=True) == 16
    assert loader_workers(None, on_gpu=False) == 2, "a CPU run's main process needs the cores for the model"
    assert loader_workers(3, on_gpu=True) == 3


@pytest.mark.parametrize(("options", "idle"), [
    (TrainOptions(), False),  # every term on, no Locarno head: DDP needs no unused-parameter search
    (TrainOptions(weights=LossWeights(cls=0.0)), True),  # the class head idles
    (TrainOptions(weights=LossWeights(clip=0.0, prompt=0.0)), True),  # the text tower and logit scale idle
    (TrainOptions(weights=LossWeights(view=0.0)), False),
    (TrainOptions(objective="caption-only"), True),  # the class head idles
    (TrainOptions(objective="arcface"), False),  # the text tower is frozen, DDP skips it
])
def test_ddp_searches_for_unused_parameters_only_when_a_head_idles(options: TrainOptions, idle: bool) -> None:
    assert options.idle_parameters() is idle


def test_caption_only_is_the_clip_term_alone_whatever_the_lambdas() -> None:
    options = TrainOptions(objective="caption-only", weights=LossWeights(view=0.7))
    options.check()
    assert options.weights == LossWeights(clip=1.0, cls=0.0, prompt=0.0, view=0.0, locarno=0.0)
    assert options.record()["weights"] == {"clip": 1.0, "cls": 0.0, "prompt": 0.0, "view": 0.0, "locarno": 0.0}
