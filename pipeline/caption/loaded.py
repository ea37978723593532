"""The captioners of this process: each model loaded once and shared by every shard, freed when the stage ends."""

from __future__ import annotations

import threading
from typing import Any

from designclip.pipeline.caption.backends import make_captioner
from designclip.pipeline.caption.captioner import Captioner, caption_set_id
from designclip.pipeline.caption.options import CaptionerSpec
from designclip.storage.captions import write_set_record
from designclip.storage.folder import DataFolder

_LOADED: dict[str, Captioner] = {}
_LOCK = threading.Lock()


def load_captioner(spec: CaptionerSpec) -> Captioner:
    """The captioner for `spec`, loaded on first use and shared by every shard task of this process."""
    with _LOCK:
        key = spec.cache_key()
        if key not in _LOADED:
            _LOADED[key] = make_captioner(spec.backend, spec.model_id, spec.batch_size, spec.generation(),
                                          spec.device, spec.loader_workers)
        return _LOADED[key]


def unload_captioners() -> None:
    """Free every loaded model (GPU memory) once the stage is over."""
    with _LOCK:
        for c in _LOADED.values():
            c.close()
        _LOADED.clear()


def as_folder(root: DataFolder | str) -> DataFolder:
    """The data root as a DataFolder (library callers pass its path)."""
    return root if isinstance(root, DataFolder) else DataFolder(root)


def set_record(captioner: Captioner) -> dict[str, Any]:
    """What captioner.json keeps: the backend, model, prompt version and settings that define a caption set."""
    return {"backend": captioner.backend, "model_id": captioner.model_id,
            "prompt_version": captioner.prompt_version, "settings": captioner.settings()}


def prepare_set(data_root: DataFolder | str, profile: str, captioner: Captioner) -> str:
    """The caption set id of this captioner, its captioner.json written (or checked) under the profile."""
    record = set_record(captioner)
    set_id = caption_set_id(record["backend"], record["model_id"], record["prompt_version"], record["settings"])
    write_set_record(as_folder(data_root), profile, set_id, record)
    return set_id
