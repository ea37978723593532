"""Every training process's rows in one tensor, gradients included, so contrastive negatives span the global batch.

With N processes each loss term is computed on the N per-process batches together (open_clip's `gather_with_grad`,
non-local form): every process computes the same global loss. The gather's backward sums the N copies of a row's
gradient, which DDP's gradient averaging then divides by N, so the update equals one process on the global batch.
Batches may differ in size by a row or two (a PNG that fails to decode is dropped), so rows are padded to the
largest batch for the collective and the padding is cut out again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

ROW_KEYS = ("image_features", "text_features", "class_logits", "locarno_logits")  # per-sample model outputs


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) outside distributed training."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGather(torch.autograd.Function):
    """all_gather whose backward returns this rank's slice of the all-reduced gradient (any backend, gloo too)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        rows = grad.shape[0] // dist.get_world_size()
        rank = dist.get_rank()
        return grad[rank * rows:(rank + 1) * rows]


def _rows_per_rank(n: int, device: torch.device) -> list[int]:
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([n], dtype=torch.long, device=device))
    return [int(s) for s in sizes]


def gather_rows(x: Tensor, sizes: list[int]) -> Tensor:
    """`x` (this rank's `sizes[rank]` rows) concatenated with every other rank's, in rank order, with gradients."""
    most = max(sizes)
    padded = torch.cat([x, x.new_zeros((most - x.shape[0], *x.shape[1:]))]) if x.shape[0] < most else x
    everything = _AllGather.apply(padded)
    if all(n == most for n in sizes):
        return everything
    keep = torch.cat([torch.arange(r * most, r * most + n, device=x.device) for r, n in enumerate(sizes)])
    return everything.index_select(0, keep)


def gather_batch(out: dict[str, Any], labels: Sequence[Tensor]) -> tuple[dict[str, Any], list[Tensor]]:
    """The model outputs' per-sample rows and the labels of all processes; shared outputs (scale, prompts) as is."""
    _, size = world()
    if size == 1:
        return out, list(labels)
    sizes = _rows_per_rank(int(labels[0].shape[0]), labels[0].device)
    gathered = {k: (gather_rows(v, sizes) if k in ROW_KEYS and v is not None else v) for k, v in out.items()}
    return gathered, [gather_rows(t, sizes) for t in labels]
