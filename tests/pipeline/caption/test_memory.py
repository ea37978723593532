"""The llava backend's batch size: LLaVA-1.5-7B's memory per caption worked out by hand, real prompt lengths."""

from __future__ import annotations

import pytest
from designclip.pipeline.caption.llava import build_prompt, prompt_tokens
from designclip.pipeline.caption.memory import MAX_AUTO_BATCH, batch_size_for, bytes_per_sample
from designclip.pipeline.caption.tiny_llava import build_processor, build_tokenizer
from designclip.pipeline.render.patent_views import RenderOptions, render_patent
from transformers import LlamaConfig

from tests.fixtures.render import fixture_input

GIB = 2**30
# Llama-2-7B, the language model of llava-hf/llava-1.5-7b-hf
LLAVA_7B_TEXT = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                            num_key_value_heads=32, vocab_size=32064)


def test_llava_7b_memory_per_caption_by_hand():
    # KV cache per token: 2 (K, V) x 32 layers x 32 heads x 128 dims x 2 bytes (bf16) = 524,288 B = 0.5 MiB.
    # Prefill peak per prompt token: 4 x (11008 + 4096) x 2 B = 120,832 B.
    # A 677-token prompt (576 image tokens + 101 text) + 77 new tokens:
    #   754 x 524,288 + 677 x 120,832 = 395,313,152 + 81,803,264 = 477,116,416 B (455 MiB).
    assert bytes_per_sample(LLAVA_7B_TEXT, 2, 677, 77) == 477_116_416
    # The old estimate: 1.5 x 0.5 MiB x (576 + 256 guessed text + 77) = 714,866,688 B, 1.5x too much.


@pytest.mark.parametrize(("free_gib", "expected"), [
    # 80 GB card after 13.2 GiB of bf16 weights: 0.9 x 66 GiB / 477,116,416 B = 133.7 -> 128 (was 64: powers of 2
    # in 0.7 of the free memory at 714,866,688 B each)
    (66, 128),
    (40, 80),     # 0.9 x 40 GiB / 477,116,416 = 81.0 -> 80: not only powers of two
    (125, 248),   # H200 (139 GiB) after the weights: 253.2 -> 248
    (200, MAX_AUTO_BATCH),  # 405.1, capped at 256
    (3, 6),       # 6.1 -> 6: under 8, any size
    (0.3, 1),     # not even one fits: 1, and the OOM path says so if it really does not
])
def test_batch_size_for_llava_7b_on_free_memory(free_gib, expected):
    assert batch_size_for(int(free_gib * GIB), 477_116_416) == expected


@pytest.fixture(scope="module")
def processor_336():
    """LLaVA-1.5's image geometry (336 px, patch 14 -> 576 image tokens) around the tests' tokenizer."""
    return build_processor(build_tokenizer(pad_vocab_to=32064), 336)


def test_prompt_length_is_the_longest_real_prompt_with_its_image_tokens(processor_336):
    views = render_patent(fixture_input("USD0909824"), RenderOptions(size=256)).samples
    prompts = [build_prompt(processor_336, v.meta) for v in views]
    text = [len(ids) for ids in processor_336.tokenizer(prompts)["input_ids"]]
    assert len(set(text)) > 1  # the FIG. descriptions differ in length: the longest one sizes the batch
    assert prompt_tokens(processor_336, prompts) == max(text) - 1 + 576  # "<image>" becomes 576 tokens
    assert prompt_tokens(processor_336, prompts[:1]) == text[0] + 575
