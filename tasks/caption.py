"""Prefect task of the caption stage: one task per rendered shard, the model loaded once per process."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.caption.captioner import (
    Captioner,
    CaptionResult,
    GenerationSettings,
    caption_set_id,
    make_captioner,
)
from designclip.pipeline.common.contact_sheet import caption_sheet
from designclip.storage import layout
from designclip.storage.captions import (
    ShardCaptionWriter,
    ShardRef,
    read_shard_requests,
    shard_captions_done,
    write_set_record,
)
from designclip.storage.folder import DataFolder
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

_LOADED: dict[str, Captioner] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class CaptionerSpec:
    """How to build a captioner (hashable, so Prefect tasks can take it as a parameter)."""

    backend: str = "metadata"
    model_id: str | None = None
    batch_size: int | None = None
    max_new_tokens: int = 77
    min_new_tokens: int = 0
    seed: int = 0
    device: str | None = None
    loader_workers: int = 2
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def generation(self) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                                  seed=self.seed, extra=dict(self.extra))

    def cache_key(self) -> str:
        return json.dumps([self.backend, self.model_id, self.batch_size, self.max_new_tokens, self.min_new_tokens,
                           self.seed, self.device, self.loader_workers, list(self.extra)], default=str)


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


def set_record(captioner: Captioner) -> dict[str, Any]:
    """What captioner.json keeps: the backend, model, prompt version and settings that define a caption set."""
    return {"backend": captioner.backend, "model_id": captioner.model_id,
            "prompt_version": captioner.prompt_version, "settings": captioner.settings()}


def prepare_set(data_root: str, profile: str, captioner: Captioner) -> str:
    """The caption set id of this captioner, its captioner.json written (or checked) under the profile."""
    record = set_record(captioner)
    set_id = caption_set_id(record["backend"], record["model_id"], record["prompt_version"], record["settings"])
    write_set_record(DataFolder(data_root), profile, set_id, record)
    return set_id


def _preview_items(requests: dict[str, bytes], rows: list[dict[str, Any]], n: int) -> list[tuple[bytes, str, str]]:
    picked = [r for r in rows if r["error"]][:n // 2]
    picked += [r for r in rows if not r["error"]][: n - len(picked)]
    return [(requests[r["key"]], r["key"], r["caption"] or f"FAILED {r['error']}") for r in picked]


def caption_shard_file(data_root: str, profile: str, ref: ShardRef, captioner: Captioner, caption_set: str,
                       logger: logging.Logger | logging.LoggerAdapter | None = None, checkpoint_rows: int = 256,
                       on_result: Callable[[CaptionResult], None] | None = None) -> dict[str, Any]:
    """Caption one rendered shard; a finished shard is skipped, an unfinished one resumes after its checkpoints."""
    log = logger or logging.getLogger("designclip.caption")
    folder = DataFolder(data_root)
    done = shard_captions_done(folder, profile, caption_set, ref)
    if done is not None:
        return {**done, "skipped": True}
    started = time.perf_counter()
    requests = read_shard_requests(folder, profile, ref)
    base = {"backend": captioner.backend, "model_id": captioner.model_id,
            "prompt_version": captioner.prompt_version, "settings": json.dumps(captioner.settings(), sort_keys=True)}
    writer = ShardCaptionWriter(folder, profile, caption_set, ref, [r.key for r in requests], base, checkpoint_rows)
    todo = [r for r in requests if r.key not in writer.done_keys]
    if writer.resumed:
        log.info("%s: resuming, %d of %d captions kept from the last run", ref.name, writer.resumed, len(requests))
    progress = CountProgress(f"caption {ref.name}", len(requests), log, unit="views")
    count = writer.resumed
    try:
        for result in captioner.caption(todo):
            writer.add(result)
            count += 1
            progress(count)
            if result.error:
                log.warning("%s: %s not captioned: %s", ref.name, result.key, result.error)
            if on_result is not None:
                on_result(result)
    except BaseException:
        writer.checkpoint()  # keep what this run finished; the next run resumes after it
        raise
    stats = writer.finish(time.perf_counter() - started)
    if ref.number == 0:
        pngs = {r.key: r.png for r in requests}
        rows = [writer.rows[k] for k in pngs]
        with folder.atomic_open(layout.caption_preview(profile, caption_set, ref.week)) as f:
            f.write(caption_sheet(_preview_items(pngs, rows, 12),
                                  title=f"{caption_set}: {layout.week_id(ref.week)} shard 0"))
    return {**stats, "skipped": False}


@task(name="caption-shard", task_run_name="caption-{ref.name}", retries=1, retry_delay_seconds=5,
      cache_policy=NO_CACHE)
def caption_shard(data_root: str, profile: str, ref: ShardRef, spec: CaptionerSpec, caption_set: str) -> dict[str, Any]:
    """Captions of one rendered shard (a retry or rerun resumes after the last checkpoint)."""
    log = get_run_logger()
    stats = caption_shard_file(data_root, profile, ref, load_captioner(spec), caption_set, logger=log)
    log.info("%s: %s %d captions, %d failures", ref.name, "already captioned:" if stats["skipped"] else "wrote",
             stats["captioned"], stats["failures"])
    return stats
