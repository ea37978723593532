"""The whole DAG on a small range (12 patents): every split gets a patent, evaluate runs, the run does not fail."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from designclip.pipeline.ingest.mirror import build_bdss_mirror
from designclip.pipeline.ingest.sample import sample_patents_dir
from designclip.storage import layout

START, END = dt.date(2021, 4, 20), dt.date(2021, 9, 10)  # 8 sample weeks, 12 patents, all "train" by hash
RELEASE = "small"


def run_dag(tmp_path: Path, start: dt.date, end: dt.date) -> dict:
    from designclip.flows.pipeline import pipeline_flow
    from designclip.pipeline.dag.run_profile import default_profile

    mirror = tmp_path / "mirror"
    build_bdss_mirror(sample_patents_dir(), mirror)
    profile = default_profile(gpu=False).with_options(steps=4, batch_size=8, checkpoint_every=2, log_every=2)
    return pipeline_flow(start=start, end=end, data_root=str(tmp_path / "data"), base_url=mirror.as_uri(),
                         release=RELEASE, profile=profile)


@pytest.mark.usefixtures("prefect_harness")
def test_a_12_patent_range_runs_through_evaluate(tmp_path: Path) -> None:
    summary = run_dag(tmp_path, START, END)
    data = tmp_path / "data"
    assert summary["failed"] == []
    marker = json.loads((data / layout.release_marker(RELEASE)).read_text())
    assert marker["patents"] == 12
    assert all(marker["splits"][s]["patents"] >= 1 for s in ("train", "val", "test")), marker["splits"]
    report = json.loads((data / "reports" / RELEASE / summary["run"] / "report.json").read_text())
    assert report["counts"]["test"]["patents"] >= 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_2_patent_range_skips_evaluation_with_a_warning_and_does_not_fail(tmp_path: Path, caplog) -> None:
    summary = run_dag(tmp_path, dt.date(2021, 1, 1), dt.date(2021, 1, 10))  # one week, 2 patents: no test split
    assert summary["failed"] == []
    assert summary["stages"]["evaluate"]["skipped"] == summary["stages"]["evaluate"]["units"]
    assert "has no test views" in caplog.text and "evaluation skipped" in caplog.text
    assert not (tmp_path / "data" / "reports" / RELEASE / summary["run"] / "report.json").exists()
