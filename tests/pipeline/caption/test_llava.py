"""llava backend on a tiny random LLaVA saved to disk: real loading, real rendered views, batch-independent greedy."""

from __future__ import annotations

import io
import shutil
import weakref
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from designclip.pipeline.caption import llava as caption_llava
from designclip.pipeline.caption.backends import make_captioner
from designclip.pipeline.caption.captioner import (
    CaptionerError,
    CaptionRequest,
    CaptionResult,
    GenerationSettings,
    caption_set_id,
)
from designclip.pipeline.caption.llava import LlavaCaptioner, build_prompt, prompt_tokens
from designclip.pipeline.caption.prompts import PROMPT_VERSION, caption_question, llava_prompt
from designclip.pipeline.caption.tiny_llava import build_tiny_llava
from designclip.pipeline.render.patent_views import RenderOptions, render_patent
from PIL import Image, ImageOps

from tests.fixtures.render import fixture_input

GEN = GenerationSettings(max_new_tokens=16)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def requests() -> list[CaptionRequest]:
    """15 real views: USD0909824 (7 FIG.s split from 3 sheets) and USD0907292 (8 FIG.s, one per sheet)."""
    samples = [s for p in ("USD0909824", "USD0907292") for s in render_patent(fixture_input(p),
                                                                             RenderOptions(size=256)).samples]
    return [CaptionRequest(s.key, s.png, s.meta) for s in samples]


def run(folder: Path, requests: list[CaptionRequest], batch_size: int | None = 1, workers: int = 0,
        generation: GenerationSettings = GEN) -> list[CaptionResult]:
    captioner = make_captioner("llava", model_id=str(folder), batch_size=batch_size, generation=generation,
                               device="cpu", loader_workers=workers)
    try:
        return list(captioner.caption(requests))
    finally:
        captioner.close()


def texts(results: list[CaptionResult]) -> list[tuple[str, str | None, int | None]]:
    return [(r.key, r.caption, r.output_tokens) for r in results]


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def reference(tiny_folder: Path, requests: list[CaptionRequest]) -> list[CaptionResult]:
    """Batch size 1, in-process loading: the released DesignCLIP setting everything else must match."""
    return run(tiny_folder, requests)


def test_loads_from_a_folder_and_captions_real_views(tiny_folder, requests, reference):
    captioner = make_captioner("llava", model_id=str(tiny_folder), generation=GEN, device="cpu", loader_workers=0)
    assert isinstance(captioner, LlavaCaptioner)
    assert (captioner.backend, captioner.prompt_version, captioner.model_id) == ("llava", PROMPT_VERSION,
                                                                                 str(tiny_folder))
    assert captioner.batch_size == 8 and captioner.model.dtype == torch.float32  # CPU defaults
    captioner.close()
    assert captioner.model is None
    assert [r.key for r in reference] == [r.key for r in requests]
    assert all(r.error is None and isinstance(r.caption, str) and r.caption.strip() for r in reference)
    assert len({r.caption for r in reference}) == len(reference)  # each view gets its own text
    assert all(1 <= r.output_tokens <= GEN.max_new_tokens and r.batch_size == 1 and r.seconds > 0 for r in reference)


def test_greedy_captions_do_not_depend_on_batch_size(tiny_folder, requests, reference):
    for batch_size in (3, 8):
        results = run(tiny_folder, requests, batch_size=batch_size)
        assert texts(results) == texts(reference)
        # 15 views: full batches, then the remainder; each result records the batch it ran in.
        full, rest = divmod(len(requests), batch_size)
        assert [r.batch_size for r in results] == [batch_size] * (full * batch_size) + [rest] * rest


def test_left_padding_is_what_keeps_batches_independent(tiny_folder, requests, reference):
    """The same batch right-padded gives different text: the batch-size test above can fail."""
    captioner = LlavaCaptioner(str(tiny_folder), batch_size=8, generation=GEN, device="cpu", loader_workers=0)
    captioner.processor.tokenizer.padding_side = "right"
    results = list(captioner.caption(requests))
    assert texts(results) != texts(reference)


def test_unreadable_pngs_are_recorded_and_their_batch_neighbours_still_match(tiny_folder, requests, reference):
    good = requests[3].png
    bad = [CaptionRequest("garbage", b"\x89PNG\r\n\x1a\nnot a png", {}),
           CaptionRequest("truncated", good[: len(good) // 2], requests[3].meta)]
    mixed = requests[:4] + bad[:1] + requests[4:6] + bad[1:] + requests[6:]
    results = run(tiny_folder, mixed, batch_size=8)
    by_key = {r.key: r for r in results}
    assert [r.key for r in results] == [r.key for r in mixed]
    for key in ("garbage", "truncated"):
        assert by_key[key].caption is None and by_key[key].output_tokens is None
        assert by_key[key].error.startswith("image_unreadable: ")
    assert "truncated" in by_key["truncated"].error
    assert texts([r for r in results if r.key not in ("garbage", "truncated")]) == texts(reference)


def test_captions_look_at_the_image(tiny_folder, requests, reference):
    """Same question, the view's pixels inverted: a different caption, so the image tokens reach the language model."""
    inverted = [replace(requests[i], png=_png(ImageOps.invert(_image(requests[i].png)))) for i in (0, 8)]
    results = run(tiny_folder, inverted, batch_size=2)
    assert [r.prompt for r in results] == [reference[0].prompt, reference[8].prompt]
    assert results[0].caption != reference[0].caption and results[1].caption != reference[8].caption


def test_out_of_memory_halves_the_batch_and_loses_nothing(tiny_folder, requests, reference):
    """A generate call over 2 rows raises CUDA OOM (as a too-big batch would): the same rows are retried smaller."""
    captioner = LlavaCaptioner(str(tiny_folder), batch_size=8, generation=GEN, device="cpu", loader_workers=0)
    generate, calls = captioner._generate, []

    def tight(inputs: dict[str, torch.Tensor]) -> list[tuple[str, int]]:
        calls.append(len(inputs["input_ids"]))
        if calls[-1] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return generate(inputs)

    captioner._generate = tight
    results = list(captioner.caption(requests))
    assert texts(results) == texts(reference) and captioner.batch_size == 2
    assert calls[:3] == [8, 4, 2] and max(calls[3:]) == 2 and {r.batch_size for r in results} == {1, 2}


def test_out_of_memory_frees_the_failed_calls_tensors_before_retrying(tiny_folder, requests, reference, monkeypatch):
    """The OOM's traceback holds generate's frames (their KV cache): memory is released only once it is gone."""
    captioner = LlavaCaptioner(str(tiny_folder), batch_size=8, generation=GEN, device="cpu", loader_workers=0)
    generate, held, freed_when = captioner._generate, [], []

    def tight(inputs: dict[str, torch.Tensor]) -> list[tuple[str, int]]:
        if len(inputs["input_ids"]) > 4:
            cache = torch.zeros(len(inputs["input_ids"]), 1024)  # what a failed generate leaves in its frames
            held.append(weakref.ref(cache))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return generate(inputs)

    def release(device: torch.device) -> None:
        freed_when.append([ref() is None for ref in held])

    captioner._generate = tight
    monkeypatch.setattr(caption_llava, "release_memory", release)
    results = list(captioner.caption(requests))
    assert texts(results) == texts(reference) and captioner.batch_size == captioner.oom_cap == 4
    assert freed_when == [[True]], "released once, after the failed call's tensors were dropped"


def test_auto_batch_is_sized_from_the_real_prompts_and_free_memory(tiny_folder, requests, monkeypatch):
    """CUDA sizing (free memory faked on the CPU): the longest real prompt's tokens, capped after an OOM."""
    captioner = LlavaCaptioner(str(tiny_folder), batch_size=1, generation=GEN, device="cpu", loader_workers=0)
    captioner.auto_batch = True
    prompts = [build_prompt(captioner.processor, r.meta) for r in requests]
    tokens = prompt_tokens(captioner.processor, prompts)
    text_lengths = [len(ids) for ids in captioner.processor.tokenizer(prompts)["input_ids"]]
    assert tokens == max(text_lengths) + 15  # the tiny model's <image> becomes 16 image tokens
    # tiny LLaMA: KV 2 x 2 layers x 2 kv-heads x 16 dims x 4 B = 512 B/token; prefill 4 x (128 + 64) x 4 = 3072 B
    per_sample = 512 * (tokens + GEN.max_new_tokens) + 3072 * tokens
    monkeypatch.setattr(caption_llava, "free_cuda_bytes", lambda device: int(12.5 * per_sample / 0.9))
    list(captioner.caption(requests[:2]))
    assert captioner.batch_size == 8  # 12 fit: rounded down to a multiple of 8
    captioner.oom_cap = 4
    list(captioner.caption(requests[:2]))
    assert captioner.batch_size == 4


def test_loader_workers_give_the_same_captions(tiny_folder, requests, reference):
    assert texts(run(tiny_folder, requests, batch_size=3, workers=2)) == texts(reference)


@pytest.fixture(scope="module")
def early_eos_folder(tiny_folder, requests, tmp_path_factory) -> tuple[Path, int]:
    """A copy of the tiny model whose generation config also stops on the 3rd token it emits for view 0."""
    captioner = LlavaCaptioner(str(tiny_folder), batch_size=1, generation=GEN, device="cpu", loader_workers=0)
    inputs = captioner.processor(images=[_image(requests[0].png)], text=[build_prompt(captioner.processor,
                                 requests[0].meta)], return_tensors="pt")
    with torch.inference_mode():
        out = captioner.model.generate(**inputs, max_new_tokens=3, do_sample=False)
    token = int(out[0, -1])
    stops_after = out[0, inputs["input_ids"].shape[1]:].tolist().index(token) + 1
    folder = tmp_path_factory.mktemp("early-eos") / "model"
    shutil.copytree(tiny_folder, folder)
    captioner.model.generation_config.eos_token_id = [captioner.model.generation_config.eos_token_id, token]
    captioner.model.generation_config.save_pretrained(folder)
    return folder, stops_after


def test_min_new_tokens_forces_a_fixed_output_length(early_eos_folder, requests):
    folder, stops_after = early_eos_folder
    free = run(folder, requests[:4], batch_size=4)
    assert free[0].output_tokens == stops_after < GEN.max_new_tokens
    forced = run(folder, requests[:4], batch_size=4, generation=replace(GEN, min_new_tokens=GEN.max_new_tokens))
    assert [r.output_tokens for r in forced] == [GEN.max_new_tokens] * 4
    assert len(forced[0].caption) > len(free[0].caption)


def test_missing_model_folder_says_what_to_do(tmp_path):
    with pytest.raises(CaptionerError, match=r"--model .*") as missing:
        make_captioner("llava", model_id=str(tmp_path / "no-such-model"), device="cpu")
    assert "huggingface-cli download llava-hf/llava-1.5-7b-hf" in str(missing.value)
    with pytest.raises(CaptionerError, match="cannot load LLaVA model"):
        make_captioner("llava", model_id=str(tmp_path), device="cpu")  # exists, but holds no config.json


def test_prompts_carry_title_and_fig_description(tiny_folder, requests, reference):
    for request, result in zip(requests, reference, strict=True):
        meta = request.meta
        assert meta["title"].lower() in result.prompt and meta["view_description"].rstrip(".") in result.prompt
        # The saved llava-1.5 chat template renders exactly the LLaVA-1.5 format of the shared question.
        assert result.prompt == llava_prompt(caption_question(meta))
        assert result.prompt.count("<image>") == 1


def test_prompt_falls_back_to_llava_format_without_a_chat_template(tiny_folder, requests):
    captioner = LlavaCaptioner(str(tiny_folder), batch_size=1, generation=GEN, device="cpu", loader_workers=0)
    captioner.processor.chat_template = "{{ 'Q: ' + messages[0]['content'][1]['text'] }}"
    assert build_prompt(captioner.processor, requests[0].meta) == "Q: " + caption_question(requests[0].meta)
    captioner.processor.chat_template = None
    assert build_prompt(captioner.processor, requests[0].meta) == llava_prompt(caption_question(requests[0].meta))


def test_settings_name_the_text_not_the_batch(tiny_folder):
    small = LlavaCaptioner(str(tiny_folder), batch_size=1, generation=GEN, device="cpu", loader_workers=0)
    big = LlavaCaptioner(str(tiny_folder), batch_size=8, generation=GEN, device="cpu", loader_workers=2)
    assert small.settings() == big.settings() == {**GEN.record(), "image_size": {"height": 56, "width": 56}}
    ids = {caption_set_id("llava", str(tiny_folder), PROMPT_VERSION, c.settings()) for c in (small, big)}
    longer = LlavaCaptioner(str(tiny_folder), batch_size=1, generation=replace(GEN, max_new_tokens=32),
                            device="cpu", loader_workers=0)
    assert len(ids) == 1 and caption_set_id("llava", str(tiny_folder), PROMPT_VERSION, longer.settings()) not in ids


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_batches_on_cuda(tiny_folder, requests):
    captioner = make_captioner("llava", model_id=str(tiny_folder), generation=GEN, device="cuda", loader_workers=2)
    assert captioner.model.dtype == torch.bfloat16 and captioner.batch_size >= 8  # auto-tuned from free memory
    results = list(captioner.caption(requests))
    captioner.close()
    assert [r.key for r in results] == [r.key for r in requests]
    assert all(r.error is None and r.caption and r.output_tokens for r in results)


def test_llava_gets_one_captioner_per_gpu_and_other_backends_one(monkeypatch):
    import torch
    from designclip.pipeline.caption.captioner import caption_devices

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert caption_devices("llava") == ["cuda:0", "cuda:1", "cuda:2"]
    assert caption_devices("metadata") == [None] and caption_devices("vllm") == [None]  # vllm places itself
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert caption_devices("llava") == [None]  # one GPU (or none): the default device
