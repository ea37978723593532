"""The render stage end to end on real ingested weeks: counts reconcile, a killed run resumes to identical shards."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from designclip.pipeline.ingest.sample import ingest_sample_weeks
from designclip.pipeline.render.driver import RENDER, RenderStageOptions
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_marker, read_table

ROOT = Path(__file__).resolve().parents[2]
WEEK = dt.date(2021, 3, 16)  # USD0913174 (Hague FIG. 1.1..), USD0913175 (2 FIG.s a sheet), USD0913312, USD0913313
CHEAP_WEEKS = [dt.date(2021, 5, 4), dt.date(2021, 8, 31)]
OPTIONS = RenderOptions(size=128)
PROFILE = OPTIONS.profile


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    ingest_sample_weeks(root, [WEEK, *CHEAP_WEEKS], tmp_path_factory.mktemp("tars"))
    return root


def copy_ingested(src: Path, dst: Path) -> str:
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return str(dst)


def shard_digests(root: str, week: dt.date) -> dict[str, str]:
    folder = DataFolder(root)
    return {rel: hashlib.sha256(folder.read_bytes(rel)).hexdigest()
            for rel in folder.list(layout.shard_dir(PROFILE, week), ".tar")}


def test_render_flow_counts_reconcile_with_the_figures_table(ingested, tmp_path, prefect_harness):
    from designclip.flows.render import render_flow

    root = copy_ingested(ingested, tmp_path / "d")
    rows = render_flow(start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31), data_root=root, size=128,
                       workers=2, shard_samples=5)
    assert [r["status"] for r in rows] == ["done"] * 3
    figures = read_table(DataFolder(root), "figures", ["patent_id", "fig"]).to_pylist()
    keys, patents_seen = [], []
    for week in (WEEK, *CHEAP_WEEKS):
        urls = sorted(str(Path(root) / p) for p in read_marker(DataFolder(root), layout.render_stage(PROFILE),
                                                                   week)["shards"])
        for sample in wds.WebDataset(urls, shardshuffle=False).decode("pil"):
            keys.append(sample["__key__"])
            assert sample["png"].size == (128, 128) and isinstance(sample["json"], dict)
            assert sample["cls"] == sample["json"]["cls"] and sample["txt"] == sample["json"]["caption_metadata"]
            pid = sample["json"]["patent_id"]
            if not patents_seen or patents_seen[-1] != pid:
                patents_seen.append(pid)
    assert len(keys) == len(set(keys)) == len(figures)
    assert len(patents_seen) == len(set(patents_seen))  # each patent's samples are adjacent
    assert (Path(root) / layout.preview_file(PROFILE, WEEK)).stat().st_size > 1000
    again = render_flow(start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31), data_root=root, size=128, workers=1,
                        shard_samples=5)
    assert [r["status"] for r in again] == ["skipped (done)"] * 3


def test_render_flow_without_ingested_weeks_says_what_to_run(tmp_path, prefect_harness):
    from designclip.flows.render import RenderFailed, render_flow

    with pytest.raises(RenderFailed, match="designclip ingest"):
        render_flow(start=dt.date(2021, 1, 1), end=dt.date(2021, 1, 31), data_root=str(tmp_path))


KILLER = """
import datetime as dt, os, signal, sys
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.pipeline.render.driver import RENDER, RenderStageOptions
from designclip.storage.folder import DataFolder
def hook(done, total=None):
    if done == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real crash mid-shard
RENDER.run(DataFolder(sys.argv[1]), dt.date(2021, 3, 16), RenderStageOptions(RenderOptions(size=128), max_samples=3),
           hook)
"""


def test_killed_mid_shard_then_rerun_gives_identical_shards(ingested, tmp_path):
    clean = copy_ingested(ingested, tmp_path / "clean")
    RENDER.run(DataFolder(clean), WEEK, RenderStageOptions(OPTIONS, max_samples=3))
    expected = shard_digests(clean, WEEK)
    assert len(expected) == 4  # 8, 6, 2, 2 views: one patent per shard (limit 3, patents never split)

    crashed = copy_ingested(ingested, tmp_path / "crashed")
    proc = subprocess.run([sys.executable, "-c", KILLER, crashed], cwd=ROOT, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    folder = DataFolder(crashed)
    shard_dir = Path(crashed) / layout.shard_dir(PROFILE, WEEK)
    finished = folder.list(layout.shard_dir(PROFILE, WEEK), ".stats.json")
    assert len(finished) == 2  # shards 0 and 1 done; shard 2 was being written
    assert not (shard_dir / "00002.tar").exists()  # the half-written shard is only a hidden temporary
    assert [p.name for p in shard_dir.iterdir() if p.name.endswith(".tmp")]
    before = {rel: d for rel, d in shard_digests(crashed, WEEK).items()}
    mtimes = {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("0000[01].tar")}

    stats = RENDER.run(DataFolder(crashed), WEEK, RenderStageOptions(OPTIONS, max_samples=3)).stats
    assert stats["samples"] == 18 and stats["patents"] == 4
    assert shard_digests(crashed, WEEK) == expected
    assert all(before[rel] == expected[rel] for rel in before)
    assert {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("0000[01].tar")} == mtimes  # not rewritten
    assert not [p.name for p in shard_dir.iterdir() if p.name.endswith(".tmp")]
    with tarfile.open(shard_dir / "00002.tar") as tar:
        assert tar.getnames()[0] == "USD0913312_f1.png"
