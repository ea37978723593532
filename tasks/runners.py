"""Where a flow's per-week tasks run: threads in this process, or a Dask cluster (local or at an address)."""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

RUNNERS = ("local", "dask")


def default_dask_workers() -> int:
    return max(1, os.cpu_count() or 1)


def task_runner(runner: str = "local", dask_address: str | None = None, workers: int | None = None) -> TaskRunner:
    """A Prefect task runner: `local` threads (workers = threads), or Dask at `dask_address` or a new LocalCluster."""
    if runner == "local":
        if dask_address:
            raise ValueError("--dask-address needs --runner dask")
        return ThreadPoolTaskRunner(max_workers=workers or 2)
    if runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:  # an optional dependency: say how to get it
            raise RuntimeError("--runner dask needs prefect-dask (pip install prefect-dask)") from e
        if dask_address:
            if workers:
                raise ValueError("--dask-workers sizes a new local Dask cluster, not one at --dask-address")
            return DaskTaskRunner(address=dask_address)
        # one single-threaded worker process per CPU: a week's render is CPU-bound Python (the GIL)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers or default_dask_workers(), "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    raise ValueError(f"unknown runner {runner!r}: choose one of {', '.join(RUNNERS)}")
