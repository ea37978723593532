"""LLaVA captions with Hugging Face transformers: batched greedy generate, images prepared by a CPU DataLoader."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from designclip.pipeline.caption.captioner import (
    DEFAULT_LLAVA_MODEL,
    CaptionerError,
    CaptionRequest,
    CaptionResult,
    GenerationSettings,
)
from designclip.pipeline.caption.inputs import InputBatch, ViewDataset, gpu_batches, view_loader
from designclip.pipeline.caption.memory import (
    MAX_AUTO_BATCH,
    batch_size_for,
    bytes_per_sample,
    free_cuda_bytes,
    release_memory,
)
from designclip.pipeline.caption.prompts import PROMPT_VERSION, caption_question, clean_caption, llava_prompt
from PIL import Image

CPU_BATCH_SIZE = 8


def resolve_device(device: str | None) -> torch.device:
    """CUDA when there is one: captioning a week on a CPU is a smoke test, not a run."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' = bf16 on GPU (LLaVA's training dtype), fp32 on CPU (bf16 matmuls there are slow and inexact)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise CaptionerError(f"unknown dtype {name!r}: use auto, bfloat16, float16 or float32")
    return value


def _load_error(model_id: str, error: Exception) -> CaptionerError:
    """Say what to do: weights cannot be downloaded here, so point at a local folder or the download command."""
    return CaptionerError(
        f"cannot load LLaVA model {model_id!r} ({type(error).__name__}: {error}). "
        "If this machine has no internet, download the weights on one that does "
        f"(`huggingface-cli download {DEFAULT_LLAVA_MODEL} --local-dir llava-1.5-7b-hf`), copy the folder here "
        "and pass it with --model /path/to/llava-1.5-7b-hf."
    )


def _looks_local(model_id: str) -> bool:
    """A path, not a Hub id: a missing folder must fail here, not as a confusing 'invalid repo id'."""
    return model_id.startswith((".", "/", "~")) or Path(model_id).expanduser().exists()


def load_llava(model_id: str, dtype: torch.dtype, device: torch.device) -> tuple[Any, Any]:
    """Processor and model via from_pretrained (LLaVA class first, any image-text-to-text model otherwise)."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    source = model_id
    if _looks_local(model_id):
        source = str(Path(model_id).expanduser())
        if not Path(source).is_dir():
            raise _load_error(model_id, FileNotFoundError(f"no model folder at {source}"))
    try:
        config = AutoConfig.from_pretrained(source)
        processor = AutoProcessor.from_pretrained(source)
        cls = LlavaForConditionalGeneration if config.model_type == "llava" else AutoModelForImageTextToText
        placement = {"device_map": {"": str(device)}} if device.type == "cuda" else {}
        model = cls.from_pretrained(source, dtype=dtype, **placement)
    except (OSError, ValueError, KeyError, ImportError) as error:
        raise _load_error(model_id, error) from error
    return model, processor


def build_prompt(processor: Any, meta: dict[str, Any]) -> str:
    """The model's own chat template when it has one (llava-hf ships one), else the LLaVA-1.5 format."""
    question = caption_question(meta)
    if getattr(processor, "chat_template", None):
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return processor.apply_chat_template(conversation, add_generation_prompt=True)
    return llava_prompt(question)


def image_size(processor: Any) -> dict[str, int] | None:
    """The size the model sees: the centre crop when the processor crops, else its resize target."""
    images = getattr(processor, "image_processor", None)
    size = images.crop_size if getattr(images, "do_center_crop", False) else getattr(images, "size", None)
    return {k: v for k, v in dict(size).items() if v is not None} if size else None


def prompt_tokens(processor: Any, prompts: Sequence[str]) -> int:
    """Tokens of the longest prompt as the model sees it (the processor expands `<image>` into the image tokens)."""
    lengths = [len(ids) for ids in processor.tokenizer(list(prompts))["input_ids"]]
    longest = prompts[lengths.index(max(lengths))]
    side = max((image_size(processor) or {"height": 336}).values())
    blank = Image.new("RGB", (side, side), "white")
    return int(processor(images=[blank], text=[longest], return_tensors="pt")["input_ids"].shape[1])


def _slice_inputs(inputs: dict[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
    """Rows start:stop of a left-padded batch, without the padding columns no row of the slice needs."""
    part = {k: v[start:stop] for k, v in inputs.items()}
    mask = part.get("attention_mask")
    if mask is not None and mask.ndim == 2:
        first = int(mask.any(dim=0).nonzero()[0]) if mask.any() else 0
        for key in ("input_ids", "attention_mask"):
            part[key] = part[key][:, first:]
    return part


def count_output_tokens(tokens: torch.Tensor, eos_ids: set[int]) -> list[int]:
    """Generated tokens per row up to and including the first eos (what follows is padding)."""
    counts = []
    for row in tokens.tolist():
        stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
        counts.append(len(row) if stop is None else stop + 1)
    return counts


class LlavaCaptioner:
    """The llava backend: one model load, then shards of views captioned batch by batch, in request order."""

    backend = "llava"
    prompt_version = PROMPT_VERSION

    def __init__(self, model_id: str = DEFAULT_LLAVA_MODEL, batch_size: int | None = None,
                 generation: GenerationSettings | None = None, device: str | None = None, loader_workers: int = 2):
        self._configure(model_id, generation, device, loader_workers)
        model, processor = load_llava(model_id, self.dtype, self.device)
        self._attach(model, processor, batch_size)

    @classmethod
    def from_parts(cls, model: Any, processor: Any, model_id: str, batch_size: int | None = None,
                   generation: GenerationSettings | None = None, device: str | None = None,
                   loader_workers: int = 2) -> LlavaCaptioner:
        """Wrap an already-built model (benchmarks build random-weight 7B models that exist in no folder)."""
        self = cls.__new__(cls)
        self._configure(model_id, generation, device, loader_workers)
        self._attach(model.to(self.device), processor, batch_size)
        return self

    def _configure(self, model_id: str, generation: GenerationSettings | None, device: str | None,
                   loader_workers: int) -> None:
        self.model_id = model_id
        self.generation = generation or GenerationSettings()
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(self.generation.dtype, self.device)
        self.loader_workers = loader_workers

    def _attach(self, model: Any, processor: Any, batch_size: int | None) -> None:
        self.model = model.eval()
        self.processor = processor
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"  # batched generate continues every row from its last prompt token
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {int(eos)}
        self.auto_batch = batch_size is None and self.device.type == "cuda"
        self.oom_cap = MAX_AUTO_BATCH  # lowered by each out-of-memory; auto sizing never goes above it again
        self.batch_size = batch_size or CPU_BATCH_SIZE
        if self.auto_batch:
            self.batch_size = self._fit_batch([build_prompt(processor, {})])

    def settings(self) -> dict[str, Any]:
        """Generation settings plus the processor's image size (it changes what the model sees)."""
        return {**self.generation.record(), "image_size": image_size(self.processor)}

    def _fit_batch(self, prompts: Sequence[str]) -> int:
        """CUDA: the batch whose KV cache and prefill fit the free memory at the longest real prompt length."""
        text = self.model.config.get_text_config()
        per_sample = bytes_per_sample(text, self.model.dtype.itemsize, prompt_tokens(self.processor, prompts),
                                      self.generation.max_new_tokens)
        return min(self.oom_cap, batch_size_for(free_cuda_bytes(self.device), per_sample))

    def caption(self, requests: Sequence[CaptionRequest]) -> Iterator[CaptionResult]:
        """Captions in request order, one GPU batch at a time (errors recorded in place)."""
        prompts = [build_prompt(self.processor, r.meta) for r in requests]
        if self.auto_batch and prompts:
            self.batch_size = self._fit_batch(prompts)
        tokenizer = self.processor.tokenizer
        chunks = iter(view_loader(ViewDataset(requests, prompts, self.processor), self.batch_size, self.loader_workers))
        batches = gpu_batches(chunks, lambda: self.batch_size, tokenizer.pad_token_id, tokenizer.padding_side)
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                return
            done = self._generate_all(batch)
            share = (time.perf_counter() - started) / batch.size
            for index in sorted([*batch.indices, *batch.errors]):
                request = requests[index]
                if index in batch.errors:
                    yield CaptionResult(request.key, None, prompts[index], batch.errors[index], share, None,
                                        batch.size)
                    continue
                text, tokens, rows = done[index]
                error = None if text else "empty_caption"
                yield CaptionResult(request.key, text or None, prompts[index], error, share, tokens, rows)

    def _generate_all(self, batch: InputBatch) -> dict[int, tuple[str, int, int]]:
        """Generate for the readable rows in chunks of the current batch size, halving it on CUDA OOM."""
        out: dict[int, tuple[str, int, int]] = {}
        start = 0
        while start < len(batch.indices):
            stop = min(start + self.batch_size, len(batch.indices))
            texts = self._generate_or_none(_slice_inputs(batch.inputs, start, stop))
            if texts is None:  # out of memory: the failed call's frames are gone now, so their tensors can be freed
                release_memory(self.device)
                self.batch_size = self.oom_cap = self.batch_size // 2  # retry the same rows smaller; none dropped
                continue
            for index, (text, tokens) in zip(batch.indices[start:stop], texts, strict=True):
                out[index] = (text, tokens, stop - start)
            start = stop
        return out

    def _generate_or_none(self, inputs: dict[str, torch.Tensor]) -> list[tuple[str, int]] | None:
        """`_generate`, or None on CUDA OOM above batch 1: returned, not raised, so no traceback keeps its tensors."""
        try:
            return self._generate(inputs)
        except torch.cuda.OutOfMemoryError:
            if self.batch_size == 1:
                raise
        return None

    def _generate(self, inputs: dict[str, torch.Tensor]) -> list[tuple[str, int]]:
        """One greedy (or seeded) generate call; decode only the new tokens, then clean them."""
        gen = self.generation
        moved = {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}
        if "pixel_values" in moved:
            moved["pixel_values"] = moved["pixel_values"].to(self.model.dtype)
        torch.manual_seed(gen.seed)
        with torch.inference_mode():
            output = self.model.generate(**moved, max_new_tokens=gen.max_new_tokens,
                                         min_new_tokens=gen.min_new_tokens or None, do_sample=gen.do_sample,
                                         pad_token_id=self.processor.tokenizer.pad_token_id, **gen.extra)
        new = output[:, moved["input_ids"].shape[1]:].cpu()
        counts = count_output_tokens(new, self.eos_ids)
        rows = [row[:n] for row, n in zip(new, counts, strict=True)]
        texts = self.processor.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [(clean_caption(t, gen.max_words), n) for t, n in zip(texts, counts, strict=True)]

    def close(self) -> None:
        """Drop the model so the next stage (CLIP training) gets the GPU memory back."""
        self.model = None
        gc.collect()  # model modules can sit in reference cycles; collect before handing memory back
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
