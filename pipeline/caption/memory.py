"""How many captions fit in one `generate` call: the KV cache and prefill activations of the real prompt length."""

from __future__ import annotations

import gc
from typing import Any

import torch

MAX_AUTO_BATCH = 256
HEADROOM = 0.9  # the rest of the free memory absorbs allocator fragmentation and the decode-time cache growth


def bytes_per_sample(text_config: Any, dtype_bytes: int, prompt_tokens: int, max_new_tokens: int) -> int:
    """One sequence's KV cache (prompt + new tokens) plus the prefill's peak activations (MLP block, residual)."""
    heads = text_config.num_attention_heads
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
    kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
    hidden = text_config.hidden_size
    intermediate = getattr(text_config, "intermediate_size", None) or 4 * hidden
    kv_per_token = 2 * text_config.num_hidden_layers * kv_heads * head_dim * dtype_bytes
    prefill_per_token = 4 * (intermediate + hidden) * dtype_bytes  # gate, act, up, product + the hidden copies
    return kv_per_token * (prompt_tokens + max_new_tokens) + prefill_per_token * prompt_tokens


def batch_size_for(free_bytes: int, per_sample: int, cap: int = MAX_AUTO_BATCH) -> int:
    """The most samples that fit in HEADROOM of the free memory; from 8 up a multiple of 8 (tensor-core shapes)."""
    fits = int(HEADROOM * free_bytes) // per_sample
    if fits >= 8:
        fits -= fits % 8
    return max(1, min(cap, fits))


def free_cuda_bytes(device: torch.device) -> int:
    """Free device memory plus what PyTorch's allocator holds unused (new tensors reuse it first)."""
    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def release_memory(device: torch.device) -> None:
    """Collect dead tensors (an OOM's traceback frames held them), then hand cached blocks back to CUDA."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
