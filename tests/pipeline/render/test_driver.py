"""The render driver without Prefect: a week is rendered once, skipped while done, redone with other settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from designclip.pipeline.common.stage import Scope
from designclip.pipeline.ingest.sample import ingest_sample_weeks
from designclip.pipeline.render import pool
from designclip.pipeline.render.driver import RENDER, RenderStageOptions, WeekNotIngested
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.storage import layout
from designclip.storage.folder import DataFolder

WEEK = dt.date(2021, 5, 4)  # a cheap sample week
OPTIONS = RenderStageOptions(RenderOptions(size=128), max_samples=5)


def test_run_once_then_skipped_then_redone_with_other_settings(tmp_path: Path) -> None:
    ingest_sample_weeks(tmp_path / "data", [WEEK], tmp_path)
    folder = DataFolder(tmp_path / "data")
    scope = Scope(dt.date(2021, 1, 1), dt.date(2021, 12, 31), release="r", run="t", size_profile="px128")
    assert RENDER.units(folder, scope, OPTIONS) == [WEEK]
    assert RENDER.outputs(folder, scope, OPTIONS) == folder.path("shards/px128")
    calls: list[tuple[int, int | None]] = []
    first = RENDER.run(folder, WEEK, OPTIONS, lambda done, total: calls.append((done, total)))
    assert (first.stage, first.unit, first.skipped) == ("render", "I20210504", False)
    assert first.where == folder.path(layout.shard_dir("px128", WEEK))
    assert first.stats["samples"] > 0 and len(first.stats["shards"]) > 1
    assert calls[-1] == (first.stats["patents"], first.stats["patents"])
    marker = folder.read_json(layout.stats_marker(layout.render_stage("px128"), WEEK))
    assert marker == dict(first.stats) and marker["settings"] == OPTIONS.settings()
    assert RENDER.is_done(folder, WEEK, OPTIONS)

    again = RENDER.run(folder, WEEK, RenderStageOptions(RenderOptions(size=128), workers=2, max_samples=5))
    assert again.skipped and again.stats == first.stats  # the worker count changes no output

    other = RenderStageOptions(RenderOptions(size=128), max_samples=6)
    assert not RENDER.is_done(folder, WEEK, other)
    redone = RENDER.run(folder, WEEK, other)
    assert not redone.skipped and redone.stats["settings"]["max_samples"] == 6
    assert RENDER.is_done(folder, WEEK, other) and not RENDER.is_done(folder, WEEK, OPTIONS)


def test_a_week_not_ingested_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(WeekNotIngested, match="designclip ingest --start 2021-05-04"):
        RENDER.run(DataFolder(tmp_path), WEEK, OPTIONS)


class CountingPool:
    """A process pool that records how many sheets were in flight at most."""

    def __init__(self, pool) -> None:
        self.pool, self.futures, self.peak = pool, [], 0

    def submit(self, fn, *args):
        future = self.pool.submit(fn, *args)
        self.futures.append(future)
        self.peak = max(self.peak, sum(1 for f in self.futures if not f.done()))
        return future


def test_two_workers_share_one_patents_sheets_and_write_the_same_bytes_week_after_week(tmp_path, monkeypatch):
    weeks = [dt.date(2021, 2, 9), WEEK]  # USD0909824: 3 sheets, 7 FIG.s; then a cheap week on the same pool
    ingest_sample_weeks(tmp_path / "one", weeks, tmp_path)
    ingest_sample_weeks(tmp_path / "two", weeks, tmp_path)
    single, double = DataFolder(tmp_path / "one"), DataFolder(tmp_path / "two")
    for week in weeks:
        RENDER.run(single, week, OPTIONS)
    monkeypatch.setattr(pool, "SHEETS_PER_WORKER", 1)  # a window smaller than one patent's sheets
    counted: list[CountingPool] = []
    real_pool = pool._pool

    def counting_pool(workers: int) -> CountingPool:
        counted.append(CountingPool(real_pool(workers)))
        return counted[-1]

    monkeypatch.setattr(pool, "_pool", counting_pool)
    two = RenderStageOptions(RenderOptions(size=128), workers=2, max_samples=5)
    for week in weeks:
        RENDER.run(double, week, two)
    assert {c.pool for c in counted} == {real_pool(2)}  # one warm pool served both weeks
    assert max(c.peak for c in counted) <= 2
    for week in weeks:
        shard_dir = layout.shard_dir("px128", week)
        names = sorted(p.name for p in Path(single.path(shard_dir)).iterdir())
        assert names and names == sorted(p.name for p in Path(double.path(shard_dir)).iterdir())
        for name in (n for n in names if n.endswith((".tar", ".parquet"))):
            assert Path(single.path(shard_dir), name).read_bytes() == Path(double.path(shard_dir), name).read_bytes()
    pool.shutdown_pools()
    assert real_pool(2) not in {c.pool for c in counted}  # a fresh pool after an explicit shutdown
    pool.shutdown_pools()
