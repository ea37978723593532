"""kill -9 of the streaming run at several moments, then a rerun: the outputs of a run that was never interrupted.

Each run is `designclip run --until caption` in its own process (on the session's Prefect server), on four sample
weeks from a local BDSS mirror. It is killed with SIGKILL when the data root shows a moment of the stream (a first
week ingested, a first week rendered, a first shard captioned, the last week being ingested), then run again to the
end; its files must equal an uninterrupted run's (markers and caption tables apart from their times; raw/ holds
download ledgers that count the extra downloads and is left out; hidden temporaries of a killed writer are never
taken for outputs).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from designclip.pipeline.ingest.mirror import build_bdss_mirror
from designclip.pipeline.ingest.sample import sample_patents_dir
from designclip.storage.folder import DataFolder

from tests.fixtures.same_outputs import differences

START, END = dt.date(2021, 3, 20), dt.date(2021, 5, 10)  # 2021-03-23, 04-06, 04-13, 05-04


def markers(root: Path, stage: str) -> int:
    return len(list((root / "_stats" / stage).rglob("*.json"))) if (root / "_stats" / stage).exists() else 0


def caption_files(root: Path) -> int:
    return len(list((root / "captions").rglob("*.parquet"))) if (root / "captions").exists() else 0


MOMENTS: dict[str, Callable[[Path], bool]] = {
    "first week ingested": lambda root: markers(root, "ingest") >= 1,
    "first week rendered": lambda root: markers(root, "render") >= 1,
    "first shard captioned": lambda root: caption_files(root) >= 1,
    "last week ingesting": lambda root: markers(root, "ingest") >= 3,
}


def run_args(root: Path, mirror: Path) -> list[str]:
    return [sys.executable, "-m", "designclip.cli.main", "--data-root", str(root), "run", "--start",
            START.isoformat(), "--end", END.isoformat(), "--base-url", mirror.as_uri(), "--until", "caption"]


def prefect_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PREFECT_LOGGING_LEVEL": "WARNING"}


def is_scratch(rel: str) -> bool:
    """Not an output: download ledgers/manifests (raw/) and a killed writer's hidden temporaries."""
    name = rel.rsplit("/", 1)[-1]
    return rel.startswith("raw/") or (name.startswith(".") and name.endswith(".tmp"))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mirror")
    build_bdss_mirror(sample_patents_dir(), out)
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mirror, prefect_harness) -> Path:
    root = tmp_path_factory.mktemp("whole") / "data"
    done = subprocess.run(run_args(root, mirror), env=prefect_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_run_killed_and_rerun_ends_with_the_files_of_an_uninterrupted_run(moment, mirror, uninterrupted, tmp_path):
    root = tmp_path / "data"
    proc = subprocess.Popen(run_args(root, mirror), env=prefect_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not MOMENTS[moment](root):
        assert proc.poll() is None, f"the run ended before the moment {moment!r}: nothing was interrupted"
        assert time.monotonic() < deadline, f"the moment {moment!r} never came"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    again = subprocess.run(run_args(root, mirror), env=prefect_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    only_times, real = differences(DataFolder(uninterrupted), DataFolder(root), skip=is_scratch)
    assert real == [], f"files that differ from an uninterrupted run: {real}"
    assert any(rel.startswith("shards/") for rel in DataFolder(root).find("")), "the compared roots hold views"
