"""The vLLM backend (optional extra): offline `LLM.generate` with `multi_modal_data`, for maximum throughput."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from designclip.pipeline.caption.captioner import CaptionerError, CaptionRequest, CaptionResult, GenerationSettings
from designclip.pipeline.caption.prompts import PROMPT_VERSION, caption_question, clean_caption, llava_prompt
from PIL import Image


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise CaptionerError("the vllm captioner needs vLLM: pip install 'designclip-pipeline[vllm]' "
                             "(Linux + CUDA GPU), or use --captioner llava") from exc
    return vllm


MIN_REQUESTS_PER_CALL = 1024  # vLLM schedules its GPU batches inside one call: hand it plenty
DECODE_THREADS = 4  # Pillow releases the GIL while it decodes and resizes
DTYPES = ("bfloat16", "float16", "float32")
# generate() keyword recorded in GenerationSettings.extra -> vllm.SamplingParams field
SAMPLING_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
                   "repetition_penalty": "repetition_penalty", "presence_penalty": "presence_penalty",
                   "frequency_penalty": "frequency_penalty"}
_SAMPLING_ONLY = ("temperature", "top_p", "top_k", "min_p")  # greedy decoding ignores them in transformers


def sampling_arguments(generation: GenerationSettings) -> dict[str, Any]:
    """Every recorded setting as a SamplingParams argument; one vLLM cannot apply is refused by name."""
    arguments = {"temperature": 1.0 if generation.do_sample else 0.0, "max_tokens": generation.max_new_tokens,
                 "min_tokens": generation.min_new_tokens, "seed": generation.seed}
    for key, value in generation.extra.items():
        if key not in SAMPLING_FIELDS:
            raise CaptionerError(f"generation setting {key}={value!r} has no vLLM equivalent (vLLM applies "
                                 f"{', '.join(SAMPLING_FIELDS)}): drop it or caption with --captioner llava")
        if key in _SAMPLING_ONLY and not generation.do_sample:
            raise CaptionerError(f"generation setting {key}={value!r} only applies when sampling, but do_sample is "
                                 "off (greedy; the llava backend would ignore it, vLLM would sample): drop it or "
                                 "turn sampling on")
        arguments[SAMPLING_FIELDS[key]] = value
    return arguments


def engine_dtype(generation: GenerationSettings) -> str:
    """The `LLM(dtype=...)` of a recorded dtype ('auto' is bf16 on the GPU, as in the llava backend)."""
    dtype = "bfloat16" if generation.dtype == "auto" else generation.dtype
    if dtype not in DTYPES:
        raise CaptionerError(f"generation setting dtype={generation.dtype!r} is not one vLLM runs: use auto, "
                             f"{', '.join(DTYPES)}")
    return dtype


def model_image_size(model_id: str) -> int | None:
    """The vision tower's input side from the model's config (336 for LLaVA-1.5), None where it names none."""
    from transformers import AutoConfig

    try:
        vision = getattr(AutoConfig.from_pretrained(model_id), "vision_config", None)
    except (OSError, ValueError, KeyError):
        return None
    size = getattr(vision, "image_size", None)
    return size if isinstance(size, int) else None


def decode_rgb(png: bytes, side: int | None = None) -> Image.Image:
    """The view as RGB, its short side shrunk to the model's input size (a bad PNG fails here, recorded)."""
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        rgb = im.convert("RGB")
    short = min(rgb.size)
    if side and short > side:
        rgb = rgb.resize((round(rgb.width * side / short), round(rgb.height * side / short)), Image.Resampling.BICUBIC)
    return rgb


@dataclass
class _Chunk:
    """One generate call's worth of requests, decoded ahead: engine inputs and the views that failed."""

    requests: Sequence[CaptionRequest]
    prompts: dict[str, str]
    inputs: list[tuple[str, dict[str, Any]]]
    failed: dict[str, str]


class VllmCaptioner:
    """Same prompts, cleaning and output rows as the llava backend; vLLM schedules the GPU batches itself."""

    backend = "vllm"
    prompt_version = PROMPT_VERSION

    def __init__(self, model_id: str, batch_size: int | None = None,
                 generation: GenerationSettings | None = None) -> None:
        vllm = _import_vllm()
        self.model_id = model_id
        self.generation = generation or GenerationSettings()
        self.batch_size = max(batch_size or 0, MIN_REQUESTS_PER_CALL)  # requests per generate call
        self.sampling = vllm.SamplingParams(**sampling_arguments(self.generation))  # refused before the load
        dtype = engine_dtype(self.generation)
        self.image_size = model_image_size(model_id)
        try:
            self.llm = vllm.LLM(model=model_id, dtype=dtype, seed=self.generation.seed,
                                limit_mm_per_prompt={"image": 1}, max_model_len=4096)
        except (OSError, ValueError) as exc:
            raise CaptionerError(f"vLLM could not load {model_id!r} ({exc}); weights cannot be downloaded here: "
                                 "pass a local folder with --model") from exc
        self._decoders = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="vllm-decode")
        self._prefetch = ThreadPoolExecutor(1, thread_name_prefix="vllm-prefetch")

    def settings(self) -> dict[str, Any]:
        return {**self.generation.record(), "image_size": self.image_size}

    def caption(self, requests: Sequence[CaptionRequest]) -> Iterator[CaptionResult]:
        """Captions in request order; the next chunk is decoded while the current one generates."""
        chunks = [requests[i: i + self.batch_size] for i in range(0, len(requests), self.batch_size)]
        ahead = self._prefetch.submit(self._prepare, chunks[0]) if chunks else None
        for number in range(len(chunks)):
            chunk = ahead.result()
            if number + 1 < len(chunks):
                ahead = self._prefetch.submit(self._prepare, chunks[number + 1])
            yield from self._generate(chunk)

    def _prepare(self, requests: Sequence[CaptionRequest]) -> _Chunk:
        """Prompts and decoded, pre-resized images of one chunk (runs in the prefetch thread)."""
        prompts = {r.key: llava_prompt(caption_question(r.meta)) for r in requests}
        images = self._decoders.map(self._decode, requests)
        inputs, failed = [], {}
        for r, image in zip(requests, images, strict=True):
            if isinstance(image, str):
                failed[r.key] = image
            else:
                inputs.append((r.key, {"prompt": prompts[r.key], "multi_modal_data": {"image": image}}))
        return _Chunk(requests, prompts, inputs, failed)

    def _decode(self, request: CaptionRequest) -> Image.Image | str:
        try:
            return decode_rgb(request.png, self.image_size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return f"image_unreadable: {type(exc).__name__}: {exc}"

    def _generate(self, chunk: _Chunk) -> Iterator[CaptionResult]:
        started = time.perf_counter()
        batch, prompts = chunk.requests, chunk.prompts
        outputs = self.llm.generate([i for _, i in chunk.inputs], self.sampling, use_tqdm=False) if chunk.inputs else []
        texts = {key: out.outputs[0] for (key, _), out in zip(chunk.inputs, outputs, strict=True)}
        share = (time.perf_counter() - started) / max(1, len(batch))
        for r in batch:
            if r.key in chunk.failed:
                yield CaptionResult(r.key, None, prompts[r.key], chunk.failed[r.key], share, None, len(batch))
                continue
            out = texts[r.key]
            caption = clean_caption(out.text, self.generation.max_words)
            error = None if caption else "empty_caption: the model returned no text"
            yield CaptionResult(r.key, caption or None, prompts[r.key], error, share, len(out.token_ids), len(batch))

    def close(self) -> None:
        self._prefetch.shutdown(wait=True)
        self._decoders.shutdown(wait=True)
        del self.llm
