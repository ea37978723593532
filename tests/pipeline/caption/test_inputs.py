"""llava inputs made per view in loader worker processes: already at the model's size, equal to one batched call."""

from __future__ import annotations

import io

import pytest
import torch
from designclip.pipeline.caption.captioner import CaptionRequest
from designclip.pipeline.caption.inputs import ViewDataset, gpu_batches, merge_inputs, view_loader
from designclip.pipeline.caption.llava import build_prompt
from designclip.pipeline.caption.tiny_llava import build_tiny_llava
from designclip.pipeline.render.patent_views import RenderOptions, render_patent
from PIL import Image
from transformers import AutoProcessor

from tests.fixtures.render import fixture_input


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory):
    """The tiny LLaVA's saved processor (56 px CLIP preprocessing, left padding), loaded the production way."""
    return AutoProcessor.from_pretrained(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))


@pytest.fixture(scope="module")
def requests() -> list[CaptionRequest]:
    """USD0909824's 7 real views as 256 px PNGs, and one truncated PNG in the middle."""
    views = [CaptionRequest(s.key, s.png, s.meta)
             for s in render_patent(fixture_input("USD0909824"), RenderOptions(size=256)).samples]
    return views[:3] + [CaptionRequest("truncated", views[3].png[:300], views[3].meta)] + views[3:]


def test_views_arrive_decoded_and_resized_from_worker_processes(processor, requests):
    prompts = [build_prompt(processor, r.meta) for r in requests]
    chunks = list(view_loader(ViewDataset(requests, prompts, processor), batch_size=4, workers=2))
    assert [len(c) for c in chunks] == [2, 2, 2, 2]  # a batch of 4 is split over the 2 workers
    items = [it for c in chunks for it in c]
    assert [it.index for it in items] == list(range(8))
    assert {it.worker for it in items} == {0, 1}  # made in the loader processes, not the main one
    good = [it for it in items if it.inputs is not None]
    assert all(it.inputs["pixel_values"].shape == (3, 56, 56) for it in good)  # 256 px PNG -> the model's 56 px
    assert [it.index for it in items if it.inputs is None] == [3] and items[3].error.startswith("image_unreadable")


def test_merged_views_equal_one_batched_processor_call(processor, requests):
    """Per-view work in the workers changes nothing: the same tensors as the processor on the whole batch."""
    views = [r for r in requests if r.key != "truncated"]
    prompts = [build_prompt(processor, r.meta) for r in views]
    data = ViewDataset(views, prompts, processor)
    merged = merge_inputs([data[i].inputs for i in range(len(views))], processor.tokenizer.pad_token_id)
    images = [Image.open(io.BytesIO(r.png)).convert("RGB") for r in views]
    batched = processor(images=images, text=prompts, return_tensors="pt", padding=True)
    assert merged.keys() == {k for k, v in batched.items() if isinstance(v, torch.Tensor)}
    for key, value in merged.items():
        assert torch.equal(value, batched[key]), key
    assert (merged["attention_mask"][:, 0] == 0).any()  # prompts differ in length: some rows are left-padded


def test_gpu_batches_follow_the_batch_size_as_it_shrinks(processor, requests):
    prompts = [build_prompt(processor, r.meta) for r in requests]
    current = [4]  # the captioner halves its batch size after the first batch (an OOM)

    def batch_size() -> int:
        return current[0]

    chunks = iter(view_loader(ViewDataset(requests, prompts, processor), batch_size=4, workers=2))
    batches = []
    for batch in gpu_batches(chunks, batch_size, processor.tokenizer.pad_token_id):
        batches.append(batch)
        current[0] = 2
    assert [b.size for b in batches] == [4, 2, 2]
    assert [b.indices for b in batches] == [[0, 1, 2], [4, 5], [6, 7]] and batches[0].errors.keys() == {3}
    assert [b.inputs["pixel_values"].shape[0] for b in batches] == [3, 2, 2]


def test_loader_without_workers_prepares_in_the_main_process(processor, requests):
    prompts = [build_prompt(processor, r.meta) for r in requests]
    (chunk,) = list(view_loader(ViewDataset(requests, prompts, processor), batch_size=8, workers=0))
    assert len(chunk) == 8 and {it.worker for it in chunk} == {None}
