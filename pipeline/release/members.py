"""A released sample's members: source samples read from week shards, grouped, rewritten, cut into shards, listed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from designclip.pipeline.release.options import METADATA_CAPTIONS
from designclip.storage.sample_json import normalise_sample_json
from designclip.storage.shard_roller import starts_new_shard
from designclip.storage.webdataset import SourceSample, group_members, member_key, tar_size

__all__ = ["SourceSample", "caption_fields", "dump_meta", "grant_year", "group_members", "group_patents",
           "manifest_row", "member_key", "release_members", "starts_new_shard", "tar_size"]


def group_patents(samples: Iterable[SourceSample]) -> Iterator[list[SourceSample]]:
    """Adjacent samples of one patent (a patent's views are written together by the render stage)."""
    group: list[SourceSample] = []
    current: str | None = None
    for s in samples:
        pid = s.patent_id
        if group and pid != current:
            yield group
            group = []
        current = pid
        group.append(s)
    if group:
        yield group


def grant_year(meta: dict[str, Any], week: str) -> int:
    """The grant year from the sample's grant date (the week's year when missing)."""
    text = str(meta.get("grant_date") or week)
    return int(text[:4])


def dump_meta(meta: dict[str, Any]) -> bytes:
    """The json member exactly as the render stage writes it (designclip.storage.shards.sample_members)."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str).encode()


def caption_fields(caption_set: str | None, caption: dict[str, Any] | None) -> dict[str, Any]:
    """The json fields that say where `.txt` came from; a failed model caption falls back to the metadata one."""
    if caption_set is None:
        return {}
    if caption is None or not caption.get("caption"):
        reason = (caption or {}).get("error") or "no caption row"
        return {"caption_source": METADATA_CAPTIONS, "caption_error": f"{caption_set}: {reason}"}
    return {"caption_source": caption_set, "caption_model": caption.get("model_id"),
            "caption_prompt_version": caption.get("prompt_version")}


def release_members(sample: SourceSample, split: str, caption_set: str | None = None,
                    caption: dict[str, Any] | None = None,
                    fields: dict[str, Any] | None = None) -> list[tuple[str, bytes]]:
    """The sample's members for the release: json normalised with `split`, caption and release `fields` set
    (e.g. dup_group), `.txt` the chosen caption."""
    extra = caption_fields(caption_set, caption) or {"caption_source": METADATA_CAPTIONS}
    out = []
    for name, data in sample.members:
        if name.endswith(".json"):
            data = dump_meta(normalise_sample_json(sample.meta | {"split": split} | extra | (fields or {})))
        elif name.endswith(".txt") and extra.get("caption_source", METADATA_CAPTIONS) != METADATA_CAPTIONS:
            data = str(caption["caption"]).encode()  # type: ignore[index]
        out.append((name, data))
    return out


def manifest_row(sample: SourceSample, meta: dict[str, Any], split: str, shard: str, index: int, offset: int,
                 members: list[tuple[str, bytes]]) -> dict[str, Any]:
    """One manifest row: where a sample is in the release, what it shows, where it came from."""
    png = next((d for n, d in members if n.endswith(".png")), b"")
    meta = {k: None if v == "" else v for k, v in meta.items()}  # Parquet says "none" with null, the json with ""
    return {
        "key": sample.key,
        "split": split,
        "shard": shard,
        "shard_index": index,
        "offset": offset,
        "patent_id": meta.get("patent_id"),
        "fig": meta.get("fig"),
        "view": meta.get("view"),
        "view_direction": meta.get("view_direction"),
        "view_type": meta.get("view_type"),
        "cls": int(meta.get("cls", -1)),
        "uspc_class": meta.get("uspc_class"),
        "locarno_class": meta.get("locarno_class"),
        "grant_year": grant_year(meta, sample.week),
        "grant_date": meta.get("grant_date"),
        "segmentation": meta.get("segmentation"),
        "flagged": bool(meta.get("flagged")),
        "png_bytes": len(png),
        "sample_bytes": sum(len(d) for _, d in members),
        "source_week": sample.week,
        "source_shard": sample.source,
        "source_index": sample.position,
    }
