"""The encoders of this process, loaded once and shared by every shard (and the evaluate stage) until unloaded."""

from __future__ import annotations

import json
import threading

from designclip.pipeline.embed.encoder import ClipEncoder, EncoderSpec, load_encoder

_LOADED: dict[str, ClipEncoder] = {}
_LOCK = threading.Lock()


def get_encoder(spec: EncoderSpec, data_root: str, device: str | None = None, precision: str = "auto",
                tag: str | None = None) -> ClipEncoder:
    """The encoder for `spec`, loaded on first use and shared by every shard task of this process."""
    key = json.dumps([spec.model, spec.pretrained, data_root, device, precision, tag])
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load_encoder(spec, data_root=data_root, device=device, precision=precision, tag=tag)
        return _LOADED[key]


def unload_encoders() -> None:
    """Drop every loaded encoder (frees GPU memory once the stage is over)."""
    with _LOCK:
        _LOADED.clear()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory is best effort
        pass
