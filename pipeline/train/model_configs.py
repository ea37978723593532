"""The open_clip configs shipped inside the package (designclip/model_configs/*.json), read with importlib.resources."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

TINY_MODEL = "designclip-tiny"


def bundled_model_config(name: str) -> dict[str, Any]:
    """The bundled open_clip config `name` (a file stem under designclip/model_configs/)."""
    return json.loads(resources.files("designclip").joinpath(f"model_configs/{name}.json").read_text())


def bundled_model_configs() -> dict[str, dict[str, Any]]:
    """Every bundled open_clip config (designclip-tiny, ...), by file stem."""
    root = resources.files("designclip").joinpath("model_configs")
    return {p.name[: -len(".json")]: json.loads(p.read_text()) for p in root.iterdir() if p.name.endswith(".json")}


def tiny_model_config() -> dict[str, Any]:
    """The CPU main job's model: a small ViT/transformer CLIP (random init) that trains in seconds."""
    return bundled_model_config(TINY_MODEL)
