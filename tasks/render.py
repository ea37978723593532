"""Prefect task of the render stage: one task per ingested week, patents rendered by a shared process pool."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

from designclip.pipeline.common.contact_sheet import Thumb, contact_sheet, thumbnail
from designclip.pipeline.render.patent_views import (
    PATENT_FIELDS,
    PatentInput,
    PatentViews,
    RenderOptions,
    class_index,
    render_patent,
)
from designclip.pipeline.render.segment import SEGMENTER_VERSION
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.shards import WeekShardWriter, sample_members
from designclip.storage.tables import read_marker, read_sheet_image, read_week_table, write_marker
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task

DEFAULT_OPTIONS = RenderOptions()
_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


class WeekNotIngested(RuntimeError):
    """Rendering needs the week's tables; the message says which command makes them."""


def _pool(workers: int) -> ProcessPoolExecutor:
    """One process pool per worker count, shared by every week task of this process (CPU stays bounded)."""
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        return _POOLS[workers]


def warm_pool(workers: int) -> None:
    """Start the worker processes now (spawning + imports take ~1 s each), e.g. before timing."""
    if workers > 1:
        for f in [_pool(workers).submit(class_index) for _ in range(workers)]:
            f.result()


def shutdown_pools() -> None:
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.shutdown(wait=True, cancel_futures=True)
        _POOLS.clear()


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["patent_id"], []).append(r)
    return out


def week_patents(folder: DataFolder, week: dt.date) -> list[dict[str, Any]]:
    """The week's patent rows (the fields a view needs), in id order: the order of the shards."""
    return sorted(read_week_table(folder, "patents", week, list(PATENT_FIELDS)).to_pylist(),
                  key=lambda p: p["patent_id"])


def week_inputs(folder: DataFolder, week: dt.date, patents: list[dict[str, Any]],
                skip: set[str]) -> Iterator[PatentInput]:
    """Each patent with its figures, sheets and TIFF bytes (one patent's images in memory at a time)."""
    figures = _group(read_week_table(folder, "figures", week).to_pylist())
    sheets = _group(read_week_table(folder, "sheets", week).to_pylist())
    for patent in patents:
        pid = patent["patent_id"]
        if pid in skip:
            continue
        rows = sheets.get(pid, [])
        images = {s["sheet"]: read_sheet_image(folder, s) for s in rows if s.get("image_path")}
        yield PatentInput(patent, figures.get(pid, []), rows, images)


def _rendered(inputs: Iterator[PatentInput], options: RenderOptions, workers: int) -> Iterator[PatentViews]:
    """Results in input order; with workers > 1 a bounded window of patents is in flight (flat memory)."""
    if workers <= 1:
        for item in inputs:
            yield render_patent(item, options)
        return
    pool, window = _pool(workers), deque[Future[PatentViews]]()
    for item in inputs:
        window.append(pool.submit(render_patent, item, options))
        if len(window) >= 2 * workers:
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


def _to_shard(views: PatentViews) -> tuple[list[tuple[str, list[tuple[str, bytes]], dict[str, Any]]], list[dict]]:
    samples = []
    for s in views.samples:
        row = {k: s.meta.get(k) for k in ("patent_id", "fig", "view", "sheet", "cls", "split", "segmentation",
                                          "flagged", "flag", "phash", "phash256")} | {"png_bytes": len(s.png)}
        samples.append((s.key, sample_members(s.key, s.png, s.meta, s.txt, s.cls), row))
    return samples, [asdict(f) for f in views.failures]


def render_week_shards(data_root: str, week: dt.date, options: RenderOptions = DEFAULT_OPTIONS, workers: int = 1,
                       max_samples: int = 1000, max_bytes: int = 256 * 2**20,
                       logger: logging.Logger | logging.LoggerAdapter | None = None,
                       on_patent: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Render one ingested week into shards; finished shards are kept, a finished week is skipped."""
    log = logger or logging.getLogger("designclip.render")
    folder = DataFolder(data_root)
    stage = layout.render_stage(options.profile)
    settings = asdict(options) | {"max_samples": max_samples, "max_bytes": max_bytes,
                                  "segmenter_version": SEGMENTER_VERSION}
    marker = read_marker(folder, stage, week)
    if marker and marker.get("settings") == settings:
        return {**marker, "skipped": True}
    if read_marker(folder, "ingest", week) is None:
        raise WeekNotIngested(f"week {week} is not ingested yet: run `designclip ingest --start {week} --end {week}`")
    started = dt.datetime.now(dt.UTC)
    writer = WeekShardWriter(folder, options.profile, week, max_samples, max_bytes, settings)
    patents = week_patents(folder, week)
    progress = CountProgress(f"render {layout.week_id(week)}", len(patents), log)
    done = len(writer.done_patents)
    thumbs: list[Thumb] = []
    try:
        for views in _rendered(week_inputs(folder, week, patents, writer.done_patents), options, workers):
            samples, failures = _to_shard(views)
            writer.add_patent(views.patent_id, samples, failures)
            thumbs.extend(thumbnail(s.png, s.key, s.meta["flagged"]) for s in views.samples[: max(0, 64 - len(thumbs))])
            done += 1
            progress(done)
            if on_patent is not None:
                on_patent(views.patent_id)
        shards = writer.close()
    except BaseException:
        writer.abort()
        raise
    stats = {
        "week": week.isoformat(),
        "profile": options.profile,
        "shards": [s["shard"] for s in shards],
        "patents": sum(len(s["patents"]) for s in shards),
        "samples": sum(s["samples"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "flagged": sum(s["flagged"] for s in shards),
        "failures": sum(s["failures"] for s in shards),
        "failures_by_reason": dict(sum((Counter(s["failures_by_reason"]) for s in shards), Counter())),
        "segmentation": dict(sum((Counter(s["segmentation"]) for s in shards), Counter())),
        "settings": settings,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    with folder.atomic_open(layout.preview_file(options.profile, week)) as f:
        f.write(contact_sheet(thumbs, title=f"{layout.week_id(week)}: first {len(thumbs)} of {stats['samples']} views"))
    write_marker(folder, stage, week, stats)
    return {**stats, "skipped": False}


@task(name="render-week", task_run_name="render-{week}", retries=1, retry_delay_seconds=5)
def render_week(data_root: str, week: dt.date, options: RenderOptions, workers: int = 1, max_samples: int = 1000,
                max_bytes: int = 256 * 2**20) -> dict[str, Any]:
    """Per-FIG. views of one week as WebDataset shards (resumes after the last finished shard)."""
    log = get_run_logger()
    stats = render_week_shards(data_root, week, options, workers, max_samples, max_bytes, logger=log)
    log.info("%s: %s %d views of %d patents in %d shards, %d flagged, %d failures", layout.week_id(week),
             "already rendered:" if stats["skipped"] else "rendered", stats["samples"], stats["patents"],
             len(stats["shards"]), stats["flagged"], stats["failures"])
    return stats
