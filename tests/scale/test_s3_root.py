"""The data root on S3 through fsspec: ingest + render into a local S3-compatible server on 127.0.0.1 (moto)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.s3 import BUCKET
from tests.scale.conftest import PROFILE, SHARD_SAMPLES, SIZE, rendered_digests

pytest.importorskip("s3fs")
boto3 = pytest.importorskip("boto3")

WEEKS = [dt.date(2021, 5, 4), dt.date(2021, 8, 31)]


def test_ingest_and_render_on_s3_equal_a_local_run(s3_endpoint, tmp_path, prefect_harness):
    import s3fs
    from designclip.pipeline.ingest.mirror import build_weekly_tar, group_by_week
    from designclip.pipeline.ingest.sample import ingest_sample_weeks
    from designclip.pipeline.render.driver import RENDER, RenderStageOptions
    from designclip.pipeline.render.patent_views import RenderOptions

    from designclip.cli.main import main
    from tests.conftest import SAMPLE

    by_week = group_by_week(SAMPLE)
    tars = [str(build_weekly_tar(w, by_week[w], tmp_path / f"I{w:%Y%m%d}.tar")) for w in WEEKS]
    root = f"s3://{BUCKET}/data"
    assert main(["--data-root", root, "ingest", "--archive", *tars]) == 0
    assert main(["--data-root", root, "render", "--start", "2021-01-01", "--end", "2021-12-31", "--size", str(SIZE),
                 "--workers", "1", "--shard-samples", str(SHARD_SAMPLES)]) == 0

    local = tmp_path / "local"
    ingest_sample_weeks(local, WEEKS, tmp_path / "local-tars")
    for week in WEEKS:
        RENDER.run(DataFolder(local), week, RenderStageOptions(RenderOptions(size=SIZE), max_samples=SHARD_SAMPLES))

    s3fs.S3FileSystem.clear_instance_cache()  # read back through a fresh client, no cached listings
    remote, here = DataFolder(root), DataFolder(str(local))
    assert here.is_local and not remote.is_local
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    for week in WEEKS:
        for marker in (layout.stats_marker("ingest", week), layout.stats_marker(layout.render_stage(PROFILE), week),
                       layout.preview_file(PROFILE, week), layout.images_file(week)):
            assert f"data/{marker}" in keys
        assert remote.read_json(layout.stats_marker(layout.render_stage(PROFILE), week))["samples"] > 0
    assert not [k for k in keys if k.endswith(".tmp")]  # every temporary was renamed into place or removed
    digests = rendered_digests(remote, WEEKS)
    assert len(digests) >= 2 * len(WEEKS) and digests == rendered_digests(here, WEEKS)
    for week in WEEKS:  # the ingested tables and the sheet images too
        tables = [layout.table_file(t, week) for t in layout.TABLE_NAMES if here.exists(layout.table_file(t, week))]
        for rel in [*tables, layout.images_file(week)]:
            assert hashlib.sha256(remote.read_bytes(rel)).digest() == hashlib.sha256(here.read_bytes(rel)).digest(), rel
