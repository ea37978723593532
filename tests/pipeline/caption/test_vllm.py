"""vllm backend without vLLM: a fake `vllm` module whose LLM records every call, on real rendered views."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from itertools import cycle, islice
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import designclip.pipeline.caption.vllm as caption_vllm
import pytest
from designclip.pipeline.caption.backends import make_captioner
from designclip.pipeline.caption.captioner import CaptionerError, CaptionRequest, GenerationSettings
from designclip.pipeline.caption.prompts import caption_question, llava_prompt
from designclip.pipeline.caption.tiny_llava import build_tiny_llava
from designclip.pipeline.caption.vllm import MIN_REQUESTS_PER_CALL, VllmCaptioner
from designclip.pipeline.render.patent_views import RenderOptions, render_patent

from tests.fixtures.render import fixture_input


@dataclass
class FakeSamplingParams:
    """vllm.SamplingParams' own field names (a name it lacks is a TypeError, as in vLLM)."""

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: list[str] | None = None
    max_tokens: int | None = 16
    min_tokens: int = 0


@dataclass
class FakeLLM:
    """Records the load arguments and each generate call; answers 'caption of <title>' per prompt."""

    kwargs: dict[str, Any]
    calls: list[dict[str, Any]] = field(default_factory=list)
    hold_first: threading.Event | None = None

    def generate(self, inputs: list[dict[str, Any]], sampling: FakeSamplingParams, use_tqdm: bool = True):
        self.calls.append({"inputs": inputs, "sampling": sampling, "decoding_ahead": None})
        if self.hold_first is not None and len(self.calls) == 1:  # chunk 1 must decode before chunk 0 returns
            self.calls[-1]["decoding_ahead"] = self.hold_first.wait(timeout=20)
        return [SimpleNamespace(outputs=[SimpleNamespace(text=f"ASSISTANT: the image shows a {i['prompt'][-60:-40]}",
                                                         token_ids=list(range(7)))]) for i in inputs]


class FakeVllm:
    """Stands in for the `vllm` module: LLM and SamplingParams, every LLM built kept for the test to read."""

    SamplingParams = FakeSamplingParams

    def __init__(self) -> None:
        self.llms: list[FakeLLM] = []
        self.hold_first: threading.Event | None = None

    def LLM(self, **kwargs: Any) -> FakeLLM:  # noqa: N802 - vLLM's name
        self.llms.append(FakeLLM(kwargs, hold_first=self.hold_first))
        return self.llms[-1]


@pytest.fixture()
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> FakeVllm:
    fake = FakeVllm()
    monkeypatch.setattr(caption_vllm, "_import_vllm", lambda: fake)
    return fake


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model folder: its config.json says the vision tower takes 56 px images."""
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def views() -> list[CaptionRequest]:
    """The 7 real 256 px views of USD0909824 (3 sheets split into FIG.s)."""
    return [CaptionRequest(s.key, s.png, s.meta)
            for s in render_patent(fixture_input("USD0909824"), RenderOptions(size=256)).samples]


def many(views: list[CaptionRequest], count: int) -> list[CaptionRequest]:
    return [replace(v, key=f"{v.key}#{i}") for i, v in enumerate(islice(cycle(views), count))]


def test_passes_at_least_1024_requests_per_call_in_order(fake_vllm, tiny_folder, views):
    requests = many(views, 2 * MIN_REQUESTS_PER_CALL + 5)
    captioner = make_captioner("vllm", model_id=str(tiny_folder), batch_size=256)  # a llava-sized batch is raised
    results = list(captioner.caption(requests))
    captioner.close()
    calls = fake_vllm.llms[0].calls
    assert [len(c["inputs"]) for c in calls] == [1024, 1024, 5]
    assert [r.key for r in results] == [r.key for r in requests]
    assert all(r.error is None and r.output_tokens == 7 and r.caption[0].isupper() for r in results)
    sent = [i for c in calls for i in c["inputs"]]
    assert [i["prompt"] for i in sent] == [llava_prompt(caption_question(r.meta)) for r in requests]
    # pre-resized in the decode threads to the vision tower's 56 px (views are 256 px squares)
    assert {i["multi_modal_data"]["image"].size for i in sent} == {(56, 56)}
    assert captioner.settings()["image_size"] == 56


def test_next_chunk_is_decoded_while_one_generates(fake_vllm, tiny_folder, views, monkeypatch):
    fake_vllm.hold_first = threading.Event()
    decode, first, decoded, lock = caption_vllm.decode_rgb, MIN_REQUESTS_PER_CALL, [0], threading.Lock()

    def watched(png: bytes, side: int | None = None):
        with lock:
            decoded[0] += 1
            if decoded[0] > first:
                fake_vllm.hold_first.set()  # a chunk-1 image: sequential code decodes it only after generate(chunk 0)
        return decode(png, side)

    monkeypatch.setattr(caption_vllm, "decode_rgb", watched)
    captioner = make_captioner("vllm", model_id=str(tiny_folder))
    results = list(captioner.caption(many(views, first + 3)))
    captioner.close()
    calls = fake_vllm.llms[0].calls
    assert [len(c["inputs"]) for c in calls] == [first, 3] and len(results) == first + 3
    assert calls[0]["decoding_ahead"] is True


def test_every_generation_setting_reaches_vllm(fake_vllm, tiny_folder):
    generation = GenerationSettings(max_new_tokens=40, min_new_tokens=5, do_sample=True, seed=7, dtype="float16",
                                    extra={"temperature": 0.7, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.1})
    captioner = VllmCaptioner(str(tiny_folder), generation=generation)
    assert captioner.sampling == FakeSamplingParams(temperature=0.7, top_p=0.9, top_k=50, repetition_penalty=1.1,
                                                    seed=7, max_tokens=40, min_tokens=5)
    assert fake_vllm.llms[0].kwargs["dtype"] == "float16" and fake_vllm.llms[0].kwargs["seed"] == 7
    greedy = VllmCaptioner(str(tiny_folder), generation=GenerationSettings(max_new_tokens=77))
    assert greedy.sampling == FakeSamplingParams(temperature=0.0, seed=0, max_tokens=77, min_tokens=0)
    assert fake_vllm.llms[1].kwargs["dtype"] == "bfloat16"


@pytest.mark.parametrize(("extra", "dtype", "message"), [
    ({"cache_implementation": "static"}, "auto", r"cache_implementation='static' has no vLLM equivalent"),
    ({"num_beams": 4}, "auto", r"num_beams=4 has no vLLM equivalent .*--captioner llava"),
    ({"temperature": 0.7}, "auto", r"temperature=0.7 only applies when sampling, but do_sample is off"),
    ({}, "int8", r"dtype='int8' is not one vLLM runs"),
])
def test_a_setting_vllm_cannot_apply_is_refused_by_name_before_loading(fake_vllm, tiny_folder, extra, dtype, message):
    with pytest.raises(CaptionerError, match=message):
        VllmCaptioner(str(tiny_folder), generation=GenerationSettings(extra=extra, dtype=dtype))
    assert fake_vllm.llms == []  # refused before the model load


def test_unreadable_views_are_recorded_not_sent(fake_vllm, tiny_folder, views):
    bad = CaptionRequest("truncated", views[0].png[:200], views[0].meta)
    captioner = VllmCaptioner(str(tiny_folder))
    results = list(captioner.caption([views[0], bad, views[1]]))
    assert [r.key for r in results] == [views[0].key, "truncated", views[1].key]
    assert results[1].caption is None and results[1].error.startswith("image_unreadable: ")
    assert len(fake_vllm.llms[0].calls[0]["inputs"]) == 2
