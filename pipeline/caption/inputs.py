"""Model inputs for the llava backend, made per view in DataLoader workers so the GPU never waits on PNG decoding."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from designclip.pipeline.caption.captioner import CaptionRequest
from designclip.pipeline.common.loader_workers import forget_parent_exit_hooks
from PIL import Image
from torch.utils.data import DataLoader, Dataset, get_worker_info

BATCHES_AHEAD = 2  # GPU batches the workers prepare while the current one generates


@dataclass
class ViewInputs:
    """One view after a worker prepared it: the processor's tensors (image already at the model's size) or an error."""

    index: int
    inputs: dict[str, torch.Tensor] | None
    error: str | None
    worker: int | None  # the loader worker that made it (None: the main process)


@dataclass
class InputBatch:
    """One GPU batch: model inputs for the readable views, errors for the rest, both by request index."""

    indices: list[int]
    inputs: dict[str, torch.Tensor]
    errors: dict[int, str]
    size: int


class ViewDataset(Dataset):
    """Decode, resize, normalise and tokenise one view with the model's own processor (in a worker process)."""

    def __init__(self, requests: Sequence[CaptionRequest], prompts: Sequence[str], processor: Any):
        self.requests, self.prompts, self.processor = requests, prompts, processor

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, index: int) -> ViewInputs:
        info = get_worker_info()
        worker = info.id if info is not None else None
        try:
            with Image.open(io.BytesIO(self.requests[index].png)) as image:
                rgb = image.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # PIL's ways to fail
            return ViewInputs(index, None, f"image_unreadable: {type(error).__name__}: {error}", worker)
        encoded = self.processor(images=[rgb], text=[self.prompts[index]], return_tensors="pt")
        tensors = {k: v[0] for k, v in encoded.items() if isinstance(v, torch.Tensor)}
        return ViewInputs(index, tensors, None, worker)


def merge_inputs(rows: Sequence[dict[str, torch.Tensor]], pad_id: int, side: str = "left") -> dict[str, torch.Tensor]:
    """Pad token rows to the longest (left: generate continues each row from its last token), stack the rest."""
    length = max(int(r["input_ids"].shape[-1]) for r in rows)
    merged = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if all(v.ndim == 1 and v.shape == r["input_ids"].shape for v, r in zip(values, rows, strict=True)):
            fill = pad_id if key == "input_ids" else 0
            gaps = [(length - v.shape[0], 0) if side == "left" else (0, length - v.shape[0]) for v in values]
            merged[key] = torch.stack([F.pad(v, gap, value=fill) for v, gap in zip(values, gaps, strict=True)])
        else:  # images; shapes differ only where a processor tiles (LLaVA-NeXT patches): zero-pad like it does
            shape = [max(v.shape[d] for v in values) for d in range(values[0].ndim)]
            merged[key] = torch.stack([_pad_to(v, shape) for v in values])
    return merged


def _pad_to(value: torch.Tensor, shape: list[int]) -> torch.Tensor:
    pads = [p for d in reversed(range(value.ndim)) for p in (0, shape[d] - value.shape[d])]
    return F.pad(value, pads) if any(pads) else value


def collate(items: Sequence[ViewInputs], pad_id: int, side: str = "left") -> InputBatch:
    """A GPU batch from prepared views (unreadable ones become errors in place)."""
    good = [it for it in items if it.inputs is not None]
    errors = {it.index: str(it.error) for it in items if it.inputs is None}
    inputs = merge_inputs([it.inputs for it in good], pad_id, side) if good else {}
    return InputBatch([it.index for it in good], inputs, errors, len(items))


def view_loader(dataset: ViewDataset, batch_size: int, workers: int) -> DataLoader:
    """Chunks of batch_size / workers views, so every worker helps with each batch, BATCHES_AHEAD batches ahead."""
    chunk = math.ceil(batch_size / workers) if workers else batch_size
    ahead = {"prefetch_factor": BATCHES_AHEAD} if workers else {}
    return DataLoader(dataset, batch_size=chunk, shuffle=False, num_workers=workers, collate_fn=list,
                      worker_init_fn=forget_parent_exit_hooks, **ahead)


def gpu_batches(chunks: Iterator[list[ViewInputs]], batch_size: Callable[[], int], pad_id: int,
                side: str = "left") -> Iterator[InputBatch]:
    """Consecutive batches of `batch_size()` views (it shrinks after an OOM) from the loader's chunks."""
    pending: list[ViewInputs] = []
    for chunk in chunks:
        pending += chunk
        while len(pending) >= batch_size():
            size = batch_size()
            yield collate(pending[:size], pad_id, side)
            pending = pending[size:]
    if pending:
        yield collate(pending, pad_id, side)
