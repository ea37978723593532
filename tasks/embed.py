"""The embed stage: one task per release shard, the encoder loaded once per process, finished shards skipped."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
from designclip.pipeline.embed.encoder import ClipEncoder, EncoderSpec, load_encoder
from designclip.pipeline.train.data import IMAGE_ERRORS, decode_image
from designclip.storage.embeddings import (
    EMBED_META,
    SPLITS,
    ReleaseShard,
    read_release_shard,
    read_shard_stats,
    release_fingerprint,
    release_shards,
    remove_temporaries,
    shard_embeddings_done,
    write_encoder_record,
    write_shard_embeddings,
)
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

Logger = logging.Logger | logging.LoggerAdapter

_LOADED: dict[str, ClipEncoder] = {}
_LOCK = threading.Lock()


class EmbedError(RuntimeError):
    """A release shard that cannot be embedded as it is; the message says what to rebuild."""


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


def prepare_release(data_root: str, release: str, encoder: ClipEncoder,
                    splits: Iterable[str] = SPLITS) -> tuple[str, list[ReleaseShard]]:
    """(release fingerprint, shards to embed); encoder.json written or checked (a reused tag is refused)."""
    folder = DataFolder(data_root)
    fingerprint = release_fingerprint(folder, release)
    shards = release_shards(folder, release, splits)
    write_encoder_record(folder, release, encoder.tag, encoder.record())
    remove_temporaries(folder, release, encoder.tag, splits)
    return fingerprint, shards


# ------------------------------------------------------------------------------------------------- one shard


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _sample(key: str, members: dict[str, bytes], shard: ReleaseShard, index: int) -> tuple[dict[str, Any], Any]:
    """(metadata row, decoded image or None) of one release sample; problems are recorded in `error`."""
    errors: list[str] = []
    try:
        meta = json.loads(members["json"])
    except (KeyError, ValueError) as err:
        meta = {}
        errors.append(f"json_unreadable: {err}")
    image = None
    if "png" not in members:
        errors.append("image_unreadable: the sample has no .png member")
    else:
        try:
            image = decode_image(members["png"])
        except IMAGE_ERRORS as err:
            errors.append(f"image_unreadable: {err}")
    caption = members.get("txt", b"").decode("utf-8", errors="replace").strip()
    if not caption:
        errors.append("caption_missing: the sample has no caption text")
    cls = meta.get("cls")
    if cls is None and members.get("cls"):
        cls = members["cls"].decode().strip()
    row = {
        "row": shard.first_row + index, "key": key, "patent_id": _text(meta.get("patent_id")),
        "title": _text(meta.get("title")), "fig": _text(meta.get("fig")), "view": _text(meta.get("view")),
        "split": shard.split, "cls": int(cls) if cls is not None else -1,
        "uspc_class": _text(meta.get("uspc_class")), "locarno_class": _text(meta.get("locarno_class")),
        "caption": caption, "shard": shard.name, "shard_index": index, "image_ok": image is not None,
        "error": "; ".join(errors) or None, "text_ok": bool(caption),
    }
    return row, image


class _ShardVectors:
    """Collects one shard's rows and encodes them a batch at a time (images only where they decoded)."""

    def __init__(self, encoder: ClipEncoder, batch_size: int) -> None:
        self.encoder, self.batch_size = encoder, batch_size
        self.rows: list[dict[str, Any]] = []
        self.image: list[np.ndarray] = []
        self.text: list[np.ndarray] = []
        self._pending: list[tuple[dict[str, Any], Any]] = []

    def add(self, row: dict[str, Any], image: Any) -> None:
        self._pending.append((row, image))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows = [r for r, _ in self._pending]
        ok = [i for i, (_, img) in enumerate(self._pending) if img is not None]
        image = np.zeros((len(rows), self.encoder.dim), np.float32)
        if ok:
            image[ok] = self.encoder.encode_images([self._pending[i][1] for i in ok])
        self.image.append(image)
        if self.encoder.has_text:
            self.text.append(self.encoder.encode_texts([r["caption"] for r in rows]))
        self.rows.extend(rows)
        self._pending = []

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        dim = self.encoder.dim
        image = np.concatenate(self.image) if self.image else np.zeros((0, dim), np.float32)
        if not self.encoder.has_text:
            return image, None
        return image, np.concatenate(self.text) if self.text else np.zeros((0, dim), np.float32)


def embed_shard_file(data_root: str, release: str, shard: ReleaseShard, encoder: ClipEncoder, batch_size: int = 64,
                     fp16: bool = False, fingerprint: str | None = None,
                     logger: Logger | None = None) -> dict[str, Any]:
    """Embed one release shard (every view and caption), or return its stats when it is already done."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    log = logger or logging.getLogger("designclip.embed")
    folder = DataFolder(data_root)
    fingerprint = fingerprint or release_fingerprint(folder, release)
    if shard_embeddings_done(folder, release, encoder.tag, shard.split, shard.number, fingerprint):
        return {**(read_shard_stats(folder, release, encoder.tag, shard.split, shard.number) or {}), "skipped": True}
    started = time.perf_counter()
    progress = CountProgress(f"embed {shard.name}", shard.samples, log, unit="views")
    vectors = _ShardVectors(encoder, batch_size)
    failures: dict[str, list[str]] = {}
    count = 0
    for count, (key, members) in enumerate(read_release_shard(folder, release, shard), start=1):
        row, image = _sample(key, members, shard, count - 1)
        if row["error"]:
            log.warning("%s: %s: %s", shard.name, key, row["error"])
            for part in row["error"].split("; "):
                failures.setdefault(part.split(":", 1)[0], []).append(key)
        vectors.add(row, image)
        if count % batch_size == 0:
            progress(count)
    vectors.flush()
    progress(count)
    if count != shard.samples:
        raise EmbedError(f"release shard {shard.name} has {count} samples but its sizes.json says {shard.samples}: "
                         f"the release is damaged; rebuild it with `designclip release --version {release}`")
    image, text = vectors.arrays()
    seconds = time.perf_counter() - started
    meta = pa.Table.from_pylist(vectors.rows, schema=EMBED_META)
    stats = {
        "shard": shard.name, "split": shard.split, "number": shard.number, "release": release,
        "release_fingerprint": fingerprint, "encoder": encoder.tag,
        "weights_sha256": encoder.info.get("weights_sha256"),
        "image_ok": int(sum(r["image_ok"] for r in vectors.rows)),
        "text_ok": int(sum(r["text_ok"] for r in vectors.rows)) if text is not None else 0,
        "failures": failures, "seconds": round(seconds, 3),
        "samples_per_s": round(count / seconds, 2) if seconds > 0 else None,
        "batch_size": batch_size, "device": encoder.device, "precision": encoder.precision,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    write_shard_embeddings(folder, release, encoder.tag, shard.split, shard.number, image, text, meta, stats,
                           dtype="float16" if fp16 else "float32")
    return {**(read_shard_stats(folder, release, encoder.tag, shard.split, shard.number) or stats), "skipped": False}


# ------------------------------------------------------------------------------------------------- summary


def shard_row(shard: ReleaseShard, stats: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """One line of the stage summary (status done / skipped (done) / failed)."""
    if stats is None:
        return {"shard": shard.name, "status": "failed", "samples": shard.samples, "error": error}
    return {"shard": shard.name, "status": "skipped (done)" if stats.get("skipped") else "done",
            "samples": stats.get("samples", 0), "image_ok": stats.get("image_ok", 0),
            "failures": sum(len(v) for v in stats.get("failures", {}).values()),
            "failures_by_reason": {k: len(v) for k, v in stats.get("failures", {}).items()},
            "failed_keys": stats.get("failures", {}), "seconds": stats.get("seconds"),
            "samples_per_s": stats.get("samples_per_s"), "dtype": stats.get("dtype"), "dim": stats.get("dim")}


def summarize(release: str, encoder: ClipEncoder, rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Totals over the shards (samples of skipped shards included; seconds and rate of this run only)."""
    ok = [r for r in rows if r["status"] != "failed"]
    ran = [r for r in ok if r["status"] == "done"]
    reasons: Counter[str] = Counter()
    keys: dict[str, list[str]] = {}
    for r in ok:
        reasons.update(r["failures_by_reason"])
        for reason, ks in r["failed_keys"].items():
            keys.setdefault(reason, []).extend(ks)
    embedded = sum(r["samples"] for r in ran)
    seconds = sum(r["seconds"] or 0.0 for r in ran)
    return {
        "model_tag": encoder.tag, "release": release, "model": encoder.info.get("spec"),
        "init": encoder.info.get("init"), "weights_sha256": encoder.info.get("weights_sha256"),
        "shards": len(rows), "skipped": sum(1 for r in ok if r["status"] == "skipped (done)"),
        "embedded_shards": len(ran), "failed_shards": [r["shard"] for r in rows if r["status"] == "failed"],
        "samples": sum(r["samples"] for r in ok), "embedded_samples": embedded,
        "image_ok": sum(r["image_ok"] for r in ok), "failures": sum(reasons.values()),
        "failures_by_reason": dict(reasons), "failed_keys": keys, "dim": encoder.dim,
        "dtypes": sorted({r["dtype"] for r in ok if r.get("dtype")}), "seconds": round(seconds, 3),
        "samples_per_s": round(embedded / seconds, 2) if seconds > 0 else None, "wall_s": round(wall_s, 3),
        "device": encoder.device, "precision": encoder.precision, "rows": rows,
    }


def embed_release(data_root: str, release: str, spec: EncoderSpec, splits: Iterable[str] = SPLITS,
                  batch_size: int = 64, fp16: bool = False, device: str | None = None, logger: Logger | None = None,
                  tag: str | None = None, precision: str = "auto") -> dict[str, Any]:
    """Embed the chosen splits of a release in this process (no Prefect); finished shards are skipped."""
    log = logger or logging.getLogger("designclip.embed")
    started = time.perf_counter()
    splits = tuple(splits)
    encoder = get_encoder(spec, data_root, device, precision, tag)
    fingerprint, shards = prepare_release(data_root, release, encoder, splits)
    log.info("embedding %d shards of release %s (%s) with %s on %s", len(shards), release, ",".join(splits),
             encoder.tag, encoder.device)
    rows = []
    for shard in shards:
        stats = embed_shard_file(data_root, release, shard, encoder, batch_size, fp16, fingerprint, log)
        rows.append(shard_row(shard, stats))
    return summarize(release, encoder, rows, time.perf_counter() - started)


@task(name="embed-shard", task_run_name="embed-{split}-{number:05d}", cache_policy=NO_CACHE)
def embed_shard(data_root: str, release: str, split: str, number: int, spec: EncoderSpec, batch_size: int = 64,
                fp16: bool = False, device: str | None = None, tag: str | None = None,
                precision: str = "auto") -> dict[str, Any]:
    """Vectors of one release shard (no retries: a rerun skips done shards and redoes this one whole)."""
    log = get_run_logger()
    folder = DataFolder(data_root)
    shard = next((s for s in release_shards(folder, release, [split]) if s.number == number), None)
    if shard is None:
        raise EmbedError(f"release {release} has no shard {split}/{number:05d}")
    encoder = get_encoder(spec, data_root, device, precision, tag)
    stats = embed_shard_file(data_root, release, shard, encoder, batch_size, fp16, logger=log)
    fails = sum(len(v) for v in stats.get("failures", {}).values())
    log.info("%s: %s %d views, %d failures", shard.name, "already embedded:" if stats["skipped"] else "embedded",
             stats.get("samples", 0), fails)
    return stats
