"""The render process pool: work goes out per drawing SHEET (a 67-sheet patent spreads over every worker), results
come back per patent in input order, and the pool stays warm across weeks until the process exits.

Callers that render week after week (a streaming DAG) just call `rendered(...)` per week: the pool of that worker
count is made once and reused, several weeks may share it at once (thread-safe), and it is shut down at interpreter
exit or by `shutdown_pools()` (for a caller that wants its CPUs back early). A pool a crashed worker broke is
replaced on the next call.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import cv2
from designclip.pipeline.render.fig_labels import warm_recogniser
from designclip.pipeline.render.patent_views import (
    PatentInput,
    PatentViews,
    Redraw,
    RenderOptions,
    assemble,
    render_patent,
    sheet_jobs,
)
from designclip.pipeline.render.placement import SheetPlan
from designclip.pipeline.render.segment import SheetLayout
from designclip.pipeline.render.sheet_views import SheetJob, SheetPass, SheetViews, draw_again, sheet_pass

SHEETS_PER_WORKER = 4  # sheets in flight per worker: enough to keep it busy, few enough to keep memory flat

_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _start_worker() -> None:
    """A worker is one core's worth: OpenCV single-threaded (the pool is the parallelism), the OCR model loaded."""
    cv2.setNumThreads(1)
    warm_recogniser()


def _pool(workers: int) -> ProcessPoolExecutor:
    """The process pool of this worker count (made once per process; a broken one is replaced)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None or getattr(pool, "_broken", False):
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_start_worker)
            _POOLS[workers] = pool
        return pool


def warm_pool(workers: int) -> None:
    """Start the worker processes now (spawn, imports and the OCR model take ~1 s each), e.g. before timing."""
    if workers > 1:
        pool = _pool(workers)
        for f in [pool.submit(time.sleep, 0.2) for _ in range(workers)]:
            f.result()


def shutdown_pools() -> None:
    """Stop every pool of this process now (also run at exit); the next `rendered` call starts a fresh one."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)  # a warm pool lives until the process ends (or an explicit shutdown_pools)


@dataclass
class _Patent:
    """A patent in flight: its sheet jobs, their futures as submitted, their passes as collected."""

    item: PatentInput
    jobs: list[SheetJob]
    started: float = field(default_factory=time.perf_counter)
    futures: list[Future[SheetPass]] = field(default_factory=list)
    passes: list[SheetPass] = field(default_factory=list)


def _redraw_on(pool: ProcessPoolExecutor) -> Redraw:
    def redraw(redo: list[tuple[SheetJob, SheetLayout, SheetPlan]]) -> list[SheetViews]:
        return [f.result() for f in [pool.submit(draw_again, *r) for r in redo]]
    return redraw


def rendered(inputs: Iterator[PatentInput], options: RenderOptions, workers: int) -> Iterator[PatentViews]:
    """Each patent's views, in input order. With workers > 1 its sheets go to the pool one by one, at most
    SHEETS_PER_WORKER x workers in flight (and the patents they belong to in memory): memory stays flat."""
    if workers <= 1:
        for item in inputs:
            yield render_patent(item, options)
        return
    pool, limit = _pool(workers), SHEETS_PER_WORKER * workers
    patents: deque[_Patent] = deque()
    unsent: deque[tuple[_Patent, SheetJob]] = deque()
    source, flying = iter(inputs), 0
    try:
        while True:
            while flying < limit:
                if not unsent:
                    item = next(source, None)
                    if item is None:
                        break
                    patent = _Patent(item, sheet_jobs(item, options))
                    patents.append(patent)
                    unsent.extend((patent, job) for job in patent.jobs)
                    continue
                patent, job = unsent.popleft()
                patent.futures.append(pool.submit(sheet_pass, job))
                flying += 1
            if not patents:
                return
            head = patents[0]
            if len(head.passes) < len(head.jobs):
                head.passes.append(head.futures[len(head.passes)].result())  # submitted: the window is FIFO
                flying -= 1
                continue
            patents.popleft()
            yield assemble(head.item, head.jobs, head.passes, head.started, _redraw_on(pool))
    except BrokenProcessPool:
        with _POOLS_LOCK:
            if _POOLS.get(workers) is pool:
                del _POOLS[workers]  # the next week starts a fresh pool
        raise
    finally:
        for patent in patents:
            for future in patent.futures:
                future.cancel()
