"""The render driver without Prefect: a week is rendered once, skipped while done, redone with other settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from designclip.pipeline.common.stage import Scope
from designclip.pipeline.ingest.sample import ingest_sample_weeks
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
