"""The render process pool: one per worker count, shared by every week of a process, so CPU use stays bounded."""

from __future__ import annotations

import multiprocessing
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from designclip.pipeline.render.patent_views import PatentInput, PatentViews, RenderOptions, class_index, render_patent

_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


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
    """Stop every pool of this process (the end of a flow); the next week starts a fresh one."""
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.shutdown(wait=True, cancel_futures=True)
        _POOLS.clear()


def rendered(inputs: Iterator[PatentInput], options: RenderOptions, workers: int) -> Iterator[PatentViews]:
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
