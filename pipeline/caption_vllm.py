"""The vLLM backend (optional extra): offline `LLM.generate` with `multi_modal_data`, for maximum throughput."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image

from pipeline.caption_prompts import PROMPT_VERSION, caption_question, clean_caption, llava_prompt
from pipeline.captioning import CaptionerError, CaptionRequest, CaptionResult, GenerationSettings


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise CaptionerError("the vllm captioner needs vLLM: pip install 'designclip-pipeline[vllm]' "
                             "(Linux + CUDA GPU), or use --captioner llava") from exc
    return vllm


def decode_rgb(png: bytes) -> Image.Image:
    """The view as RGB, decoded fully now so a bad PNG fails here, recorded, not inside the engine."""
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        return im.convert("RGB")


class VllmCaptioner:
    """Same prompts, cleaning and output rows as the llava backend; vLLM schedules the GPU batches itself."""

    backend = "vllm"
    prompt_version = PROMPT_VERSION

    def __init__(self, model_id: str, batch_size: int | None = None,
                 generation: GenerationSettings | None = None) -> None:
        vllm = _import_vllm()
        self.model_id = model_id
        self.generation = generation or GenerationSettings()
        self.batch_size = batch_size or 256  # requests handed to one generate call (vLLM batches inside it)
        dtype = "bfloat16" if self.generation.dtype == "auto" else self.generation.dtype
        try:
            self.llm = vllm.LLM(model=model_id, dtype=dtype, seed=self.generation.seed,
                                limit_mm_per_prompt={"image": 1}, max_model_len=4096)
        except (OSError, ValueError) as exc:
            raise CaptionerError(f"vLLM could not load {model_id!r} ({exc}); weights cannot be downloaded here: "
                                 "pass a local folder with --model") from exc
        self.sampling = vllm.SamplingParams(
            temperature=1.0 if self.generation.do_sample else 0.0, max_tokens=self.generation.max_new_tokens,
            min_tokens=self.generation.min_new_tokens, seed=self.generation.seed)

    def settings(self) -> dict[str, Any]:
        return self.generation.record()

    def caption(self, requests: Sequence[CaptionRequest]) -> Iterator[CaptionResult]:
        for start in range(0, len(requests), self.batch_size):
            yield from self._batch(requests[start: start + self.batch_size])

    def _batch(self, batch: Sequence[CaptionRequest]) -> Iterator[CaptionResult]:
        started = time.perf_counter()
        prompts, inputs, failed = {}, [], {}
        for r in batch:
            prompts[r.key] = llava_prompt(caption_question(r.meta))
            try:
                inputs.append((r.key, {"prompt": prompts[r.key], "multi_modal_data": {"image": decode_rgb(r.png)}}))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                failed[r.key] = f"image_unreadable: {exc}"
        outputs = self.llm.generate([i for _, i in inputs], self.sampling, use_tqdm=False) if inputs else []
        texts = {key: out.outputs[0] for (key, _), out in zip(inputs, outputs, strict=True)}
        share = (time.perf_counter() - started) / max(1, len(batch))
        for r in batch:
            if r.key in failed:
                yield CaptionResult(r.key, None, prompts[r.key], failed[r.key], share, None, len(batch))
                continue
            out = texts[r.key]
            caption = clean_caption(out.text, self.generation.max_words)
            error = None if caption else "empty_caption: the model returned no text"
            yield CaptionResult(r.key, caption or None, prompts[r.key], error, share, len(out.token_ids), len(batch))

    def close(self) -> None:
        del self.llm
