"""What an evaluation reads from releases besides vectors: caption provenance and which patents a split holds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.release import read_release_marker
from designclip.storage.release_samples import manifest_columns

METADATA = "metadata"  # pipeline.release.rules.METADATA_CAPTIONS (not imported: keeps storage free of stage code)


def release_settings(folder: DataFolder, release: str) -> dict[str, Any]:
    """The settings a finished release was built with ({} when it is not finished here)."""
    marker = read_release_marker(folder, release) or {}
    return dict((marker.get("fingerprint") or {}).get("settings") or {})


def caption_provenance(folder: DataFolder, release: str) -> dict[str, Any]:
    """Which captions the release's `.txt` hold: the caption set, its captioning model and prompt version."""
    settings = release_settings(folder, release)
    source = settings.get("caption_source") or METADATA
    out: dict[str, Any] = {"source": source, "model": None, "prompt_version": None,
                           "split_by": settings.get("split_by"), "val_year": settings.get("val_year"),
                           "test_year": settings.get("test_year")}
    if source != METADATA and settings.get("profile"):
        rel = layout.caption_set_record(settings["profile"], source)
        record = folder.read_json(rel) if folder.exists(rel) else {}
        out.update({"model": record.get("model_id"), "prompt_version": record.get("prompt_version"),
                    "backend": record.get("backend")})
    else:
        out.update({"model": "metadata text (title, view, class)", "prompt_version": None})
    return out


def render_size(folder: DataFolder, release: str, default: int = 512) -> int:
    """The view size the release's render profile made (px512 -> 512): DeepPatent sheets are squared to it."""
    match = re.fullmatch(r"px(\d+)", str(release_settings(folder, release).get("profile") or ""))
    return int(match.group(1)) if match else default


def caption_fallback(folder: DataFolder, release: str, keys: Sequence[str]) -> np.ndarray:
    """Per key: True when a model caption failed and `.txt` fell back to the metadata text (which names the class)."""
    if (release_settings(folder, release).get("caption_source") or METADATA) == METADATA:
        return np.zeros(len(keys), dtype=bool)  # metadata captions by choice, not by failure
    manifest = manifest_columns(folder, release, ["key", "caption_source"])
    source = dict(zip(manifest["key"], manifest["caption_source"], strict=True))
    return np.asarray([source.get(k) in (None, METADATA) for k in keys], dtype=bool)


def split_patents(folder: DataFolder, release: str, splits: Iterable[str]) -> set[str]:
    """The patent ids a release's `splits` hold (what a model trained on that release has seen)."""
    wanted = set(splits)
    manifest = manifest_columns(folder, release, ["split", "patent_id"])
    return {p for s, p in zip(manifest["split"], manifest["patent_id"], strict=True) if s in wanted and p}
