"""Several machines in one test: render on a Dask cluster of worker processes and caption (metadata backend), with the
data root on a local S3-compatible server (moto on 127.0.0.1) and Prefect on its embedded server, give the same files
as a run on one machine with a local data root.

Where each stage runs: render's week tasks run on the Dask workers (`render_flow(runner="dask",
dask_address=...)`, what `designclip render --runner dask --dask-address tcp://...` does). `caption_flow` has no task
runner choice: it captions shard after shard in the flow's own process (or, with `--processes N`, in N
`accelerate` processes on one machine), so here captioning runs in the flow process against the s3:// root, as
`designclip --data-root s3://... caption` does on a GPU machine.

Compared: every file under both roots (ingest tables, sheet tars, shard tars, shard Parquet indexes, previews, caption
Parquet files, caption set record), byte for byte, except what legitimately carries times:
- done markers (`_stats/render/px128/*.json`, `shards/**/*.stats.json`, `captions/**/*.stats.json`) hold
  `started_at`/`finished_at`/`duration_s`/`model_seconds`: compared as JSON with exactly those keys removed;
- caption Parquet files hold each caption's measured `seconds`: compared as Arrow tables (schema and every other
  column) with that column removed.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from designclip.storage.folder import DataFolder

from tests.fixtures.s3 import BUCKET
from tests.fixtures.same_outputs import differences, is_caption_table
from tests.scale.conftest import PROFILE, SHARD_SAMPLES, SIZE, WEEKS

distributed = pytest.importorskip("distributed")
pytest.importorskip("prefect_dask")

START, END = dt.date(2021, 1, 1), dt.date(2021, 12, 31)
def test_render_on_dask_and_caption_on_an_s3_root_equal_a_local_run(scale_ingested: Path, s3_endpoint: str,
                                                                   tmp_path: Path, prefect_harness: None) -> None:
    import s3fs
    from designclip.flows.caption import caption_flow
    from designclip.flows.render import render_flow

    local_root = str(tmp_path / "local")
    subprocess.run(["cp", "-r", str(scale_ingested), local_root], check=True)
    local_rows = render_flow(start=START, end=END, data_root=local_root, size=SIZE, workers=1,
                             shard_samples=SHARD_SAMPLES)
    assert [r["status"] for r in local_rows] == ["done"] * len(WEEKS)
    local_captions = caption_flow(start=START, end=END, data_root=local_root, profile=PROFILE, captioner="metadata")

    # the ingested weeks uploaded as they are (ingest straight into s3:// is tests/scale/test_s3_root.py's part)
    root = f"s3://{BUCKET}/data"
    s3fs.S3FileSystem().put(f"{scale_ingested}/", f"{BUCKET}/data/", recursive=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            rows = render_flow(start=START, end=END, data_root=root, size=SIZE, shard_samples=SHARD_SAMPLES,
                               runner="dask", dask_address=cluster.scheduler_address)
        workers = set(cluster.scheduler_info["workers"])
        assert [r["status"] for r in rows] == ["done"] * len(WEEKS)
        ran_on = [t["worker"] for t in stream.data]
        assert len(ran_on) == len(WEEKS) and set(ran_on) == workers and len(workers) == 2, \
            "every week rendered in a Dask worker process, both workers used"
        again = render_flow(start=START, end=END, data_root=root, size=SIZE, shard_samples=SHARD_SAMPLES,
                            runner="dask", dask_address=cluster.scheduler_address)
        assert [r["status"] for r in again] == ["skipped (done)"] * len(WEEKS)
    captions = caption_flow(start=START, end=END, data_root=root, profile=PROFILE, captioner="metadata")
    assert captions["shards"] == local_captions["shards"] > len(WEEKS)  # several shards, one caption file each
    assert captions["captioned"] == captions["samples"] == local_captions["samples"] > 0
    rerun = caption_flow(start=START, end=END, data_root=root, profile=PROFILE, captioner="metadata")
    assert rerun["skipped"] == rerun["shards"] == captions["shards"]

    s3fs.S3FileSystem.clear_instance_cache()  # read back through a fresh client, no cached listings
    local, remote = DataFolder(local_root), DataFolder(root)
    assert local.is_local and not remote.is_local
    files = remote.find("")
    assert not [rel for rel in files if rel.endswith(".tmp") or ".part" in rel], "temporaries and checkpoints gone"
    shard_tars = [rel for rel in files if rel.startswith("shards/") and rel.endswith(".tar")]
    caption_tables = [rel for rel in files if is_caption_table(rel)]
    assert len(shard_tars) == len(caption_tables) == captions["shards"]
    only_times, real = differences(local, remote)
    assert real == [], f"files that differ in more than their times: {real}"
    assert only_times, "the markers' times do differ: the comparison read both roots"

    # the comparison sees a changed caption even though caption tables are compared without their times
    table = pq.read_table(Path(local_root, caption_tables[0]))
    changed = table.set_column(table.schema.get_field_index("caption"), "caption",
                               [["edited"] + table["caption"].to_pylist()[1:]])
    pq.write_table(changed, Path(local_root, caption_tables[0]), compression="zstd")
    assert differences(local, remote)[1] == [caption_tables[0]]
