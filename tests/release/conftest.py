"""Real rendered weeks for the release tests: cheap bundled sample weeks, ingested and rendered once per session."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from designclip.pipeline.render.near_duplicates import view_hash, view_hash256
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.shards import WeekShardWriter, sample_members
from designclip.storage.tables import read_marker, write_marker
from PIL import Image

# Weeks whose patents have one FIG. per sheet (no OCR): 12 patents, 58 views, rendered in a few seconds.
RENDERED = [dt.date(2021, 3, 23), dt.date(2021, 4, 6), dt.date(2021, 4, 13), dt.date(2021, 5, 4),
            dt.date(2021, 6, 29), dt.date(2021, 8, 31), dt.date(2021, 9, 14), dt.date(2021, 12, 21),
            dt.date(2021, 12, 28)]
NOT_RENDERED = dt.date(2021, 12, 7)  # ingested only: a release must list it as not included
RATIOS = "60/20/20"  # gives these 12 patents all three splits
SHARD_SAMPLES = 10


def release_root(data: Path, version: str) -> Path:
    return data / layout.release_dir(version)


def copy_data(src: Path, dst: Path) -> Path:
    """A private copy of a data root without its releases (tests that add inputs must not touch the shared one)."""
    shutil.copytree(src, dst, ignore=lambda d, names: ["releases"] if Path(d) == src else [])
    return dst


def read_samples(tar_path: Path) -> list[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) per sample, in tar order."""
    with tarfile.open(tar_path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
    out = []
    for key, group in itertools.groupby(members, key=lambda m: m[0].split(".", 1)[0]):
        out.append((key, {name.split(".", 1)[1]: data for name, data in group}))
    return out


def clone_week(data: Path, src: dt.date, dst: dt.date,
               edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None, profile: str = "px512",
               png_edit: Callable[[str, bytes], bytes] | None = None) -> int:
    """Write rendered week `dst` from `src`'s real samples, `edit`ing each json (key, patent, dates, class)."""
    folder = DataFolder(data)
    stage = layout.render_stage(profile)
    marker = read_marker(folder, stage, src)
    assert marker is not None
    writer = WeekShardWriter(folder, profile, dst, settings=marker["settings"])
    for rel in marker["shards"]:
        samples = read_samples(data / rel)
        for patent, group in itertools.groupby(samples, key=lambda s: json.loads(s[1]["json"])["patent_id"]):
            rows = []
            for _, m in group:
                meta = json.loads(m["json"])
                meta = edit(meta) if edit else meta
                png = png_edit(meta["key"], m["png"]) if png_edit else m["png"]
                if png is not m["png"]:
                    meta = meta | png_hashes(png, meta)
                members = sample_members(meta["key"], png, meta, m["txt"].decode(), int(meta["cls"]))
                row = {k: meta.get(k) for k in ("patent_id", "fig", "view", "sheet", "cls", "split", "segmentation",
                                                "flagged", "phash", "phash256")} | {"png_bytes": len(png)}
                rows.append((meta["key"], members, row))
            writer.add_patent(rows[0][2]["patent_id"] if rows else patent, rows, [])
    shards = writer.close()
    write_marker(folder, stage, dst, {
        "week": dst.isoformat(), "profile": profile, "shards": [s["shard"] for s in shards],
        "patents": sum(len(s["patents"]) for s in shards), "samples": sum(s["samples"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards), "flagged": sum(s["flagged"] for s in shards), "failures": 0,
        "settings": marker["settings"], "started_at": "2021-01-01T00:00:00+00:00",
        "finished_at": "2021-01-01T00:00:00+00:00"})
    return sum(s["samples"] for s in shards)


def png_hashes(png: bytes, meta: dict[str, Any]) -> dict[str, str]:
    """The perceptual hashes of an edited view, as the render stage would record them (the old ones if unreadable)."""
    try:
        with Image.open(io.BytesIO(png)) as im:
            return {"phash": view_hash(im), "phash256": view_hash256(im)}
    except (OSError, SyntaxError, ValueError):
        return {k: meta.get(k, "") for k in ("phash", "phash256")}


def zoomed(key: str, png: bytes) -> bytes:
    """The view's top-left quarter blown up to the full size: another picture (its hash is far from the original's)."""
    with Image.open(io.BytesIO(png)) as im:
        w, h = im.size
        out = io.BytesIO()
        im.crop((0, 0, w // 2, h // 2)).resize((w, h), Image.Resampling.LANCZOS).save(out, format="PNG")
    return out.getvalue()


def renamed(old: str, new: str, grant_date: str | None = None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An edit giving the samples of patent `old` the id `new` (and optionally another grant date)."""

    def edit(meta: dict[str, Any]) -> dict[str, Any]:
        if meta["patent_id"] != old:
            return meta
        out = meta | {"patent_id": new, "key": meta["key"].replace(old, new, 1)}
        return out | ({"grant_date": grant_date} if grant_date else {})

    return edit
