"""`rerun --force`'s invalidation removes exactly one stage and its downstream outputs, and finds the weeks on disk."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from designclip.pipeline.dag.forget import weeks_on_disk
from designclip.pipeline.dag.stages import invalidate
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.fixtures.release import RENDERED, copy_data

W1, W2 = RENDERED[0], RENDERED[1]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def data(release_data: Path, tmp_path: Path) -> Path:
    """A private copy of the sample data root with a caption set, a raw download, a release and model outputs."""
    from designclip.pipeline.caption.driver import CaptionerSpec, caption_shard_file, load_captioner, prepare_set
    from designclip.pipeline.release.driver import build_release
    from designclip.storage.captions import rendered_shards

    root = copy_data(release_data, tmp_path / "data")
    loaded = load_captioner(CaptionerSpec("metadata"))
    cset = prepare_set(str(root), "px512", loaded)
    for ref in rendered_shards(DataFolder(root), "px512", W1, W2):
        caption_shard_file(str(root), "px512", ref, loaded, cset)
    raw = root / layout.raw_archive(W1, f"{layout.week_id(W1)}.tar")
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b"the downloaded archive")
    build_release("r1", str(root), ratios="60/20/20", shard_samples=10)
    for rel in (layout.embed_stats("r1", "run1", "test", 0), layout.index_dir("r1", "run1", "image") + "/card.json",
                layout.report_file("r1", "run1", "report.json"), layout.report_file("r1", "base", "report.json"),
                layout.comparison_report("r1", "run1-vs-base"), layout.embed_stats("r1", "base", "test", 0),
                layout.train_run_dir("run1") + "/train.json", layout.model_dir("run1") + "/open_clip_config.json",
                layout.train_run_dir("other") + "/train.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps({"made": "by a finished stage"}))
    return root


def test_force_render_removes_the_weeks_render_captions_and_the_release_downstream(data: Path):
    before = tree(data)
    removed = invalidate(DataFolder(data), "render", weeks=[W1], releases=["r1"], runs=["run1"], models=["run1"])
    gone = before - tree(data)
    assert gone and all(
        p.startswith((f"_stats/render/px512/{layout.week_id(W1)}", f"shards/px512/{layout.week_id(W1)}/",
                      f"previews/px512/{layout.week_id(W1)}", "releases/r1/", "embeddings/r1/", "indexes/r1/",
                      "reports/r1/", "runs/run1/", "models/run1/"))
        or (p.startswith("captions/px512/") and f"/{layout.week_id(W1)}/" in p)
        or (p.startswith("previews/px512/captions/") and layout.week_id(W1) in p)
        for p in gone), sorted(gone)
    assert layout.release_dir("r1") in removed and layout.stats_marker("render/px512", W1) in removed
    kept = tree(data)
    assert any(p.startswith(f"shards/px512/{layout.week_id(W2)}/") for p in kept)  # other weeks stay
    assert any(p.startswith("captions/px512/") and layout.week_id(W2) in p for p in kept)
    assert layout.table_file("patents", W1) in kept and layout.stats_marker("ingest", W1) in kept
    assert layout.raw_archive(W1, f"{layout.week_id(W1)}.tar") in kept
    assert layout.train_run_dir("other") + "/train.json" in kept  # a run that was not named stays


def test_force_ingest_keeps_raw_downloads_and_only_the_named_weeks(data: Path):
    raw = layout.raw_archive(W1, f"{layout.week_id(W1)}.tar")
    removed = invalidate(DataFolder(data), "ingest", weeks=[W1])
    kept = tree(data)
    assert raw in kept
    assert {layout.stats_marker("ingest", W1), layout.table_file("figures", W1), layout.images_file(W1)} <= set(removed)
    assert layout.stats_marker("ingest", W2) in kept and layout.table_file("figures", W2) in kept
    assert layout.release_marker("r1") in kept  # no release named: releases stay
    assert not any(r.startswith("raw/") for r in removed)


def test_force_evaluate_removes_only_reports_and_index_keeps_training(data: Path):
    folder = DataFolder(data)
    removed = invalidate(folder, "evaluate", releases=["r1"], runs=["run1"], models=["run1"])
    assert removed[0] == layout.report_dir("r1", "run1")
    assert layout.comparison_report("r1", "run1-vs-base") in removed
    kept = tree(data)
    assert layout.report_file("r1", "base", "report.json") in kept
    assert layout.embed_stats("r1", "run1", "test", 0) in kept
    assert layout.train_run_dir("run1") + "/train.json" in kept
    removed = invalidate(folder, "index", releases=["r1"], models=["run1"])
    assert set(removed) == {layout.embed_dir("r1", "run1"), layout.index_model_dir("r1", "run1")}
    assert layout.embed_stats("r1", "base", "test", 0) in tree(data)


def test_force_train_removes_the_run_its_model_and_its_vectors_on_every_release(data: Path):
    removed = invalidate(DataFolder(data), "train", runs=["run1"])
    assert set(removed) >= {layout.model_dir("run1"), layout.train_run_dir("run1"), layout.embed_dir("r1", "run1"),
                            layout.report_dir("r1", "run1")}
    assert layout.release_marker("r1") in tree(data) and layout.embed_stats("r1", "base", "test", 0) in tree(data)


def test_weeks_on_disk_finds_ingested_rendered_and_captioned_weeks_in_range(data: Path):
    folder = DataFolder(data)
    assert weeks_on_disk(folder, dt.date(2021, 1, 1), dt.date(2021, 12, 31)) == sorted(
        {*RENDERED, dt.date(2021, 12, 7)})
    assert weeks_on_disk(folder, W1, W2) == [W1, W2]
    with pytest.raises(ValueError, match="unknown stage"):
        invalidate(folder, "download", weeks=[W1])
