"""Caption files beside the rendered shards: checkpointed parts, a Parquet per shard, the stats marker last."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker, content_sha256
from designclip.storage.release import iter_shard_samples, shard_number
from designclip.storage.tables import finished_weeks, read_marker
from designclip.storage.vocabulary import BACKENDS, CaptionRequest, CaptionResult

CAPTIONS = pa.schema(
    [
        ("key", pa.string()),
        ("caption", pa.string()),
        ("error", pa.string()),
        ("prompt", pa.string()),
        ("backend", pa.string()),
        ("model_id", pa.string()),
        ("prompt_version", pa.string()),
        ("settings", pa.string()),
        ("seconds", pa.float64()),
        ("output_tokens", pa.int32()),
        ("batch_size", pa.int32()),
    ]
)


class CaptionStorageError(RuntimeError):
    """Caption outputs that cannot be used as they are; the message says which command fixes them."""


@dataclass(frozen=True)
class ShardRef:
    """One finished rendered shard: the unit the caption stage works on."""

    week: dt.date
    number: int
    tar: str

    @property
    def name(self) -> str:
        return f"{layout.week_id(self.week)}/{self.number:05d}"


def rendered_shards(folder: DataFolder, profile: str, start: dt.date = dt.date.min,
                    end: dt.date = dt.date.max) -> list[ShardRef]:
    """The shards of every finished render week in [start, end], in week and shard order."""
    stage = layout.render_stage(profile)
    out = []
    for week in finished_weeks(folder, stage):
        if start <= week <= end:
            marker = read_marker(folder, stage, week) or {}
            out.extend(ShardRef(week, shard_number(rel), rel) for rel in marker.get("shards", []))
    return out


def read_shard_requests(folder: DataFolder, profile: str, ref: ShardRef) -> list[CaptionRequest]:
    """Every sample of a rendered shard as a caption request (PNG bytes + its json), checked against the index."""
    out = []
    for sample in iter_shard_samples(folder, profile, ref.week, ref.tar):
        try:
            meta = sample.meta
        except ValueError as exc:
            raise CaptionStorageError(f"{ref.tar}: sample {sample.key} has unreadable json ({exc}); "
                                      f"re-render week {ref.week}") from exc
        png = next((d for n, d in sample.members if n.endswith(".png")), b"")
        out.append(CaptionRequest(sample.key, png, meta))
    return out


def write_set_record(folder: DataFolder, profile: str, caption_set: str, record: dict[str, Any]) -> None:
    """Describe a caption set once; a set id reused for a different captioner is refused (outputs never mix)."""
    rel = layout.caption_set_record(profile, caption_set)
    if folder.exists(rel):
        old = folder.read_json(rel)
        if old != record:
            raise CaptionStorageError(f"{folder.path(rel)} describes another captioner ({old}); "
                                      "remove that folder or use other settings")
        return
    folder.write_json(rel, record)


def caption_sets(folder: DataFolder, profile: str) -> dict[str, dict[str, Any]]:
    """Every caption set of a render profile with its captioner record."""
    out = {}
    for name in folder.ls_dirs(layout.caption_profile_dir(profile)):
        rel = layout.caption_set_record(profile, name)
        if folder.exists(rel):
            out[name] = folder.read_json(rel)
    return out


def _row(result: CaptionResult, base: dict[str, Any]) -> dict[str, Any]:
    return {**base, "key": result.key, "caption": result.caption, "error": result.error, "prompt": result.prompt,
            "seconds": float(result.seconds), "output_tokens": result.output_tokens, "batch_size": result.batch_size}


def _write_table(folder: DataFolder, rel: str, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in CAPTIONS} for r in rows], schema=CAPTIONS)
    with folder.atomic_open(rel, "wb") as f:
        pq.write_table(table, f, compression="zstd")


def read_caption_table(folder: DataFolder, rel: str) -> pa.Table:
    with folder.open(rel) as f:
        return pq.read_table(f, schema=CAPTIONS)


class ShardCaptionWriter:
    """The captions of one shard: checkpoint parts while working, then one Parquet, then the stats marker.

    A crash loses at most the rows since the last checkpoint; the next run reads the parts and captions
    only the samples they lack, so no caption is computed twice and none is lost.
    """

    def __init__(self, folder: DataFolder, profile: str, caption_set: str, ref: ShardRef, keys: list[str],
                 base: dict[str, Any], checkpoint_rows: int = 256, checkpoint_s: float = 120.0) -> None:
        self.folder, self.profile, self.caption_set, self.ref = folder, profile, caption_set, ref
        self.keys, self.base = keys, base
        self.checkpoint_rows, self.checkpoint_s = checkpoint_rows, checkpoint_s
        self.dir = layout.caption_dir(profile, caption_set, ref.week)
        folder.remove_temporaries(self.dir)
        self.parts = self._parts()
        self.rows: dict[str, dict[str, Any]] = {}
        wanted = set(keys)
        for rel in self.parts:
            for row in read_caption_table(folder, rel).to_pylist():
                if row["key"] in wanted:
                    self.rows[row["key"]] = row
        self.resumed = len(self.rows)
        self._buffer: list[dict[str, Any]] = []
        self._last = time.monotonic()

    def _parts(self) -> list[str]:
        prefix = f"{self.ref.number:05d}.part"
        return [rel for rel in self.folder.list(self.dir, ".parquet") if rel.rsplit("/", 1)[-1].startswith(prefix)]

    @property
    def done_keys(self) -> set[str]:
        return set(self.rows)

    def add(self, result: CaptionResult) -> None:
        row = _row(result, self.base)
        self.rows[result.key] = row
        self._buffer.append(row)
        if len(self._buffer) >= self.checkpoint_rows or time.monotonic() - self._last >= self.checkpoint_s:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write the rows since the last checkpoint as the next part file (atomic)."""
        if self._buffer:
            rel = layout.caption_part(self.profile, self.caption_set, self.ref.week, self.ref.number,
                                      len(self.parts))
            _write_table(self.folder, rel, self._buffer)
            self.parts.append(rel)
            self._buffer = []
        self._last = time.monotonic()

    def finish(self, duration_s: float) -> dict[str, Any]:
        """All keys captioned (or failed): the shard's Parquet, then its stats marker, then drop the parts."""
        missing = [k for k in self.keys if k not in self.rows]
        if missing:
            raise CaptionStorageError(f"{self.ref.name}: {len(missing)} samples have no caption result "
                                      f"(first {missing[0]}); rerun the caption stage")
        rows = [self.rows[k] for k in self.keys]
        _write_table(self.folder, layout.caption_file(self.profile, self.caption_set, self.ref.week,
                                                      self.ref.number), rows)
        failures = [{"key": r["key"], "error": r["error"]} for r in rows if r["error"]]
        captioned = len(rows) - len(failures)
        model_seconds = sum(r["seconds"] or 0.0 for r in rows)
        stats = {
            "shard": self.ref.tar,
            "week": self.ref.week.isoformat(),
            "number": self.ref.number,
            "caption_set": self.caption_set,
            "samples": len(rows),
            "captioned": captioned,
            "failures": len(failures),
            "failures_by_reason": dict(Counter(f["error"].split(":", 1)[0] for f in failures)),
            "failure_details": failures,
            "resumed_rows": self.resumed,
            "model_seconds": round(model_seconds, 3),
            "duration_s": round(duration_s, 3),
            "batch_sizes": sorted({int(r["batch_size"]) for r in rows if r["batch_size"] is not None}),
            "mean_output_tokens": _mean([r["output_tokens"] for r in rows if r["output_tokens"] is not None]),
            **{k: self.base[k] for k in ("backend", "model_id", "prompt_version")},
            "settings": json.loads(self.base["settings"]),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        caption_marker(self.folder, self.profile, self.caption_set, self.ref).write(stats)
        for rel in self.parts:
            self.folder.remove(rel)
        return stats


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def caption_marker(folder: DataFolder, profile: str, caption_set: str, ref: ShardRef) -> DoneMarker:
    """The done marker of one shard's captions in one caption set (its stats JSON, written last)."""
    return DoneMarker(folder, layout.caption_stats(profile, caption_set, ref.week, ref.number))


def shard_captions_done(folder: DataFolder, profile: str, caption_set: str, ref: ShardRef) -> dict[str, Any] | None:
    """The shard's caption stats when its captions are finished, else None."""
    return caption_marker(folder, profile, caption_set, ref).read()


def read_shard_captions(folder: DataFolder, profile: str, caption_set: str, week: dt.date,
                        number: int) -> dict[str, dict[str, Any]]:
    """key -> caption row of a finished shard; an unfinished one is an error that says which command to run."""
    ref = ShardRef(week, number, layout.shard_tar(profile, week, number))
    if shard_captions_done(folder, profile, caption_set, ref) is None:
        raise CaptionStorageError(f"shard {ref.name} has no finished captions in set {caption_set!r}: run "
                                  f"`designclip caption --start {week} --end {week}` with that captioner first")
    table = read_caption_table(folder, layout.caption_file(profile, caption_set, week, number))
    return {r["key"]: r for r in table.to_pylist()}


def resolve_caption_set(folder: DataFolder, profile: str, name: str) -> str:
    """A caption set id from its id or its backend name (when that backend made exactly one set)."""
    sets = caption_sets(folder, profile)
    if name in sets:
        return name
    matches = sorted(k for k, v in sets.items() if v.get("backend") == name)
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(sets)) or "none yet"
    if matches:
        raise CaptionStorageError(f"backend {name!r} made several caption sets under {profile} ({', '.join(matches)});"
                                  " pass one of them")
    how = f"--captioner {name}" if name in BACKENDS else "--captioner metadata|llava|vllm"
    raise CaptionStorageError(f"no caption set {name!r} under captions/{profile} (known: {known}); run "
                              f"`designclip caption {how}` first, or release with the metadata captions")


def captions_fingerprint(folder: DataFolder, profile: str, caption_set: str, refs: list[ShardRef],
                         legacy: bool = False) -> dict[str, Any]:
    """The caption set and a hash of its per-shard markers (without their run times; `legacy`: of their bytes, as
    releases built before recorded it); names the shards that have no finished captions."""
    import hashlib

    digest, missing = hashlib.sha256(), []
    for ref in refs:
        rel = layout.caption_stats(profile, caption_set, ref.week, ref.number)
        if not folder.exists(rel):
            missing.append(ref.name)
            continue
        body = folder.read_bytes(rel)
        shard = hashlib.sha256(body).digest() if legacy else bytes.fromhex(content_sha256(body))
        digest.update(ref.name.encode() + shard)
    return {"caption_set": caption_set, "shards": len(refs) - len(missing), "sha256": digest.hexdigest(),
            "missing": missing}
