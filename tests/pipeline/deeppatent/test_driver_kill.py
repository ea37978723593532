"""kill -9 in the middle of a DeepPatent week, then the build again: the same files as a build never interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from designclip.pipeline.deeppatent.driver import DeepPatentOptions
from designclip.pipeline.deeppatent.outputs import build
from designclip.pipeline.render.driver import RENDER
from designclip.storage.folder import DataFolder

from tests.fixtures.deeppatent import LISTS, TEST_WEEK, VAL_WEEK, ingested_deeppatent_weeks
from tests.fixtures.same_outputs import differences

ROOT = Path(__file__).resolve().parents[3]
SLOW_BUILD = """
import sys, time
from designclip.pipeline.deeppatent import driver
from designclip.pipeline.deeppatent.outputs import build
from designclip.storage.folder import DataFolder

decode = driver.tiff_to_png
def slow(tiff):  # each sheet takes 0.3 s, so the kill lands inside a week
    time.sleep(0.3)
    return decode(tiff)
driver.tiff_to_png = slow
build(DataFolder(sys.argv[1]), driver.DeepPatentOptions(sys.argv[2]))
"""
RUN_TIMES = {"seconds", "finished_at"}  # what a week's marker records about when and how long


def pngs(root: Path) -> list[Path]:
    return sorted((root / "deeppatent" / "deeppatent" / "images").rglob("*.png"))


def test_kill_9_inside_a_week_then_build_again_matches_an_uninterrupted_build(tmp_path: Path) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    for week in (VAL_WEEK, TEST_WEEK):
        RENDER.run(folder, week)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(folder.root, whole)
    shutil.copytree(folder.root, killed)
    build(DataFolder(str(whole)), DeepPatentOptions(str(LISTS)))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", SLOW_BUILD, str(killed), str(LISTS)], env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while len(pngs(killed)) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "killed, not finished"
    written = len(pngs(killed))
    assert 3 <= written < len(pngs(whole)), "killed with some of the sheets written"
    assert not (killed / "deeppatent" / "deeppatent" / "missing.json").exists()

    again = build(DataFolder(str(killed)), DeepPatentOptions(str(LISTS)))
    assert again["weeks_built"] == 2
    leftovers = [p for p in killed.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert leftovers == [], "no temporary left behind"
    markers = lambda rel: rel.startswith("_stats/deeppatent/")  # noqa: E731 - compared apart from their times
    only_times, real = differences(DataFolder(str(whole)), DataFolder(str(killed)), skip=markers)
    assert (only_times, real) == ([], []), "every image, list, view and README the same, byte for byte"
    for marker in sorted((whole / "_stats" / "deeppatent").rglob("*.json")):
        rel = marker.relative_to(whole)
        a, b = (json.loads(p.read_text()) for p in (marker, killed / rel))
        assert {k: v for k, v in a.items() if k not in RUN_TIMES | {"stats"}} == {
            k: v for k, v in b.items() if k not in RUN_TIMES | {"stats"}}
