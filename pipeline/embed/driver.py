"""The EMBED stage driver, Prefect-free: one release shard -> image and text vectors by one encoder, resumable.

Unit: a shard of a release split. Done: the shard's stats marker exists and names this build of the release. The
encoder is loaded once per process (`encoder_cache`); `prepare_release` writes or checks encoder.json first.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from designclip.pipeline.common.stage import Logger, Progress, Scope, UnitResult, no_progress
from designclip.pipeline.embed.encoder import ClipEncoder, EncoderSpec, model_tag
from designclip.pipeline.embed.encoder_cache import get_encoder
from designclip.pipeline.embed.summary import shard_row, summarize
from designclip.pipeline.embed.vectors import EmbedError, ShardVectors, release_sample
from designclip.storage import layout
from designclip.storage.embeddings import (
    EMBED_META,
    SPLITS,
    ReleaseNotReady,
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


@dataclass(frozen=True)
class EmbedOptions:
    """Which encoder embeds which splits, and how (batch size, fp16 on disk, device, autocast precision, tag)."""

    spec: EncoderSpec
    splits: tuple[str, ...] = SPLITS
    batch_size: int = 64
    fp16: bool = False
    device: str | None = None
    precision: str = "auto"
    tag: str | None = None

    @property
    def model_tag(self) -> str:
        """The name the vectors are stored under (the encoder's tag)."""
        return self.tag or model_tag(self.spec)

    def encoder(self, data_root: str) -> ClipEncoder:
        """The encoder, loaded once per process."""
        return get_encoder(self.spec, data_root, self.device, self.precision, self.tag)


@dataclass(frozen=True)
class EmbedUnit:
    """One shard of a release split."""

    release: str
    shard: ReleaseShard

    def __str__(self) -> str:
        return self.shard.name


def prepare_release(folder: DataFolder, release: str, encoder: ClipEncoder,
                    splits: Iterable[str] = SPLITS) -> list[ReleaseShard]:
    """The shards to embed; encoder.json written or checked (a reused tag is refused), temporaries removed."""
    release_fingerprint(folder, release)  # a release that is not finished is refused before anything is written
    shards = release_shards(folder, release, splits)
    write_encoder_record(folder, release, encoder.tag, encoder.record())
    remove_temporaries(folder, release, encoder.tag, splits)
    return shards


def find_shard(folder: DataFolder, release: str, split: str, number: int) -> ReleaseShard:
    """The release shard `split/number`, or an EmbedError."""
    shard = next((s for s in release_shards(folder, release, [split]) if s.number == number), None)
    if shard is None:
        raise EmbedError(f"release {release} has no shard {split}/{number:05d}")
    return shard


@dataclass(frozen=True)
class EmbedDriver:
    """EMBED: every view and caption of a release shard -> vectors + metadata; a finished shard is skipped."""

    log: Logger = field(default_factory=lambda: logging.getLogger("designclip.embed"))
    name: str = "embed"

    def units(self, folder: DataFolder, scope: Scope, options: EmbedOptions) -> list[EmbedUnit]:
        return [EmbedUnit(scope.release, s) for s in release_shards(folder, scope.release, options.splits)]

    def is_done(self, folder: DataFolder, unit: EmbedUnit, options: EmbedOptions) -> bool:
        try:
            fingerprint = release_fingerprint(folder, unit.release)
        except ReleaseNotReady:
            return False
        return shard_embeddings_done(folder, unit.release, options.model_tag, unit.shard.split, unit.shard.number,
                                     fingerprint)

    def outputs(self, folder: DataFolder, scope: Scope, options: EmbedOptions) -> str:
        return folder.path(layout.embed_dir(scope.release, options.model_tag))

    def run(self, folder: DataFolder, unit: EmbedUnit, options: EmbedOptions,
            progress: Progress = no_progress) -> UnitResult:
        """Embed the shard (progress: views done of the shard's), or return its stats when it is already done."""
        if options.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        release, shard, tag = unit.release, unit.shard, options.model_tag
        where = folder.path(layout.embed_dir(release, tag))
        fingerprint = release_fingerprint(folder, release)
        if shard_embeddings_done(folder, release, tag, shard.split, shard.number, fingerprint):
            stats = read_shard_stats(folder, release, tag, shard.split, shard.number) or {}
            return UnitResult(self.name, shard.name, True, stats, where)
        encoder = options.encoder(folder.url)
        started = time.perf_counter()
        vectors = ShardVectors(encoder, options.batch_size)
        failures: dict[str, list[str]] = {}
        count = 0
        for count, (key, members) in enumerate(read_release_shard(folder, release, shard), start=1):
            row, image = release_sample(key, members, shard, count - 1)
            if row["error"]:
                self.log.warning("%s: %s: %s", shard.name, key, row["error"])
                for part in row["error"].split("; "):
                    failures.setdefault(part.split(":", 1)[0], []).append(key)
            vectors.add(row, image)
            if count % options.batch_size == 0:
                progress(count, shard.samples)
        vectors.flush()
        progress(count, shard.samples)
        if count != shard.samples:
            raise EmbedError(f"release shard {shard.name} has {count} samples but its sizes.json says "
                             f"{shard.samples}: the release is damaged; rebuild it with "
                             f"`designclip release --version {release}`")
        image, text = vectors.arrays()
        stats = self._stats(unit, options, encoder, vectors.rows, failures, text is not None, count,
                            time.perf_counter() - started, fingerprint)
        write_shard_embeddings(folder, release, tag, shard.split, shard.number, image, text,
                               pa.Table.from_pylist(vectors.rows, schema=EMBED_META), stats,
                               dtype="float16" if options.fp16 else "float32")
        stats = read_shard_stats(folder, release, tag, shard.split, shard.number) or stats
        return UnitResult(self.name, shard.name, False, stats, where)

    @staticmethod
    def _stats(unit: EmbedUnit, options: EmbedOptions, encoder: ClipEncoder, rows: list[dict[str, Any]],
               failures: dict[str, list[str]], has_text: bool, count: int, seconds: float,
               fingerprint: str) -> dict[str, Any]:
        """What the shard's marker records (the storage side adds samples, dim, dtype)."""
        shard = unit.shard
        return {
            "shard": shard.name, "split": shard.split, "number": shard.number, "release": unit.release,
            "release_fingerprint": fingerprint, "encoder": encoder.tag,
            "weights_sha256": encoder.info.get("weights_sha256"),
            "image_ok": int(sum(r["image_ok"] for r in rows)),
            "text_ok": int(sum(r["text_ok"] for r in rows)) if has_text else 0,
            "failures": failures, "seconds": round(seconds, 3),
            "samples_per_s": round(count / seconds, 2) if seconds > 0 else None,
            "batch_size": options.batch_size, "device": encoder.device, "precision": encoder.precision,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        }


EMBED = EmbedDriver()


def embed_release(data_root: str, release: str, spec: EncoderSpec, splits: Iterable[str] = SPLITS,
                  batch_size: int = 64, fp16: bool = False, device: str | None = None, logger: Logger | None = None,
                  tag: str | None = None, precision: str = "auto") -> dict[str, Any]:
    """Embed the chosen splits of a release in this process (no Prefect); finished shards are skipped."""
    driver = EmbedDriver(logger) if logger is not None else EMBED
    started = time.perf_counter()
    folder = DataFolder(data_root)
    options = EmbedOptions(spec, tuple(splits), batch_size, fp16, device, precision, tag)
    encoder = options.encoder(data_root)
    shards = prepare_release(folder, release, encoder, options.splits)
    driver.log.info("embedding %d shards of release %s (%s) with %s on %s", len(shards), release,
                    ",".join(options.splits), encoder.tag, encoder.device)
    rows = []
    for shard in shards:
        result = driver.run(folder, EmbedUnit(release, shard), options)
        driver.log.info("%s: %s %d views", shard.name, "already embedded:" if result.skipped else "embedded",
                        result.stats.get("samples", 0))
        rows.append(shard_row(shard, result))
    return summarize(release, encoder, rows, time.perf_counter() - started)
