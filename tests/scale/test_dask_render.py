"""The render stage on a local Dask cluster of worker processes gives the local runner's bytes, shard for shard."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_marker

from tests.scale.conftest import PROFILE, SHARD_SAMPLES, SIZE, WEEKS, rendered_digests

pytest.importorskip("prefect_dask")
distributed = pytest.importorskip("distributed")

START, END = dt.date(2021, 1, 1), dt.date(2021, 12, 31)


def copy_of(src: Path, dst: Path) -> str:
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return str(dst)


def test_task_runner_choices():
    from designclip.tasks.runners import task_runner
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner(), ThreadPoolTaskRunner)
    assert task_runner("local", workers=3)._max_workers == 3
    remote = task_runner("dask", "tcp://127.0.0.1:8786")
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://127.0.0.1:8786"
    local = task_runner("dask", workers=2)
    assert local.address is None and local.cluster_kwargs["n_workers"] == 2
    with pytest.raises(ValueError, match="unknown runner 'ray'"):
        task_runner("ray")
    with pytest.raises(ValueError, match="needs --runner dask"):
        task_runner("local", "tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="not one at --dask-address"):
        task_runner("dask", "tcp://127.0.0.1:8786", workers=2)


def test_render_on_a_dask_cluster_is_byte_identical_to_the_local_runner(scale_ingested, tmp_path, prefect_harness):
    from designclip.flows.render import render_flow

    local_root = copy_of(scale_ingested, tmp_path / "local")
    local_rows = render_flow(start=START, end=END, data_root=local_root, size=SIZE, workers=1,
                             shard_samples=SHARD_SAMPLES)
    assert [r["status"] for r in local_rows] == ["done"] * len(WEEKS)
    expected = rendered_digests(DataFolder(local_root))
    assert sum(rel.endswith(".tar") for rel in expected) > len(WEEKS)  # several shards a week

    dask_root = copy_of(scale_ingested, tmp_path / "dask")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            rows = render_flow(start=START, end=END, data_root=dask_root, size=SIZE, shard_samples=SHARD_SAMPLES,
                               runner="dask", dask_address=cluster.scheduler_address)
        workers = set(cluster.scheduler_info["workers"])
    assert [r["status"] for r in rows] == ["done"] * len(WEEKS)
    ran_on = [t["worker"] for t in stream.data]
    assert len(ran_on) == len(WEEKS) and set(ran_on) == workers and len(workers) == 2  # every week on a worker process
    assert rendered_digests(DataFolder(dask_root)) == expected
    for week in WEEKS:
        local, dask = (read_marker(DataFolder(r), layout.render_stage(PROFILE), week) for r in (local_root, dask_root))
        assert {k: v for k, v in dask.items() if not k.endswith("_at")} == \
            {k: v for k, v in local.items() if not k.endswith("_at")}

    again = render_flow(start=START, end=END, data_root=dask_root, size=SIZE, shard_samples=SHARD_SAMPLES,
                        runner="dask", dask_workers=2)  # a cluster of its own this time
    assert [r["status"] for r in again] == ["skipped (done)"] * len(WEEKS)
