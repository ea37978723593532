"""The whole DAG on real sample weeks from a local BDSS mirror: a failed week, rerun, no-op rerun, forced stage."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
from pathlib import Path

import pytest
from designclip.pipeline.ingest.mirror import build_bdss_mirror
from designclip.pipeline.ingest.sample import sample_patents_dir
from designclip.storage import layout
from designclip.storage.folder import DataFolder

START, END = dt.date(2021, 3, 20), dt.date(2021, 4, 15)  # 3 cheap weeks: 2021-03-23, 04-06, 04-13, 1 patent each
WEEKS = [dt.date(2021, 3, 23), dt.date(2021, 4, 6), dt.date(2021, 4, 13)]
BAD = dt.date(2021, 4, 6)
RELEASE = "t1"
DATA_STAGES = ("ingest", "render", "caption", "release")


def files_with_mtimes(root: Path, *tops: str) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for top in tops for p in (root / top).rglob("*")
            if p.is_file()}


def tar_digests(root: Path, *tops: str) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for top in tops
            for p in sorted((root / top).rglob("*.tar"))}


def cli(argv: list[str], data_root: Path) -> int:
    from designclip.cli.run import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    args.data_root = str(data_root)
    return args.func(args)


def range_args(mirror: Path) -> list[str]:
    return ["--start", START.isoformat(), "--end", END.isoformat(), "--base-url", mirror.as_uri(),
            "--release", RELEASE, "--until", "release"]


@pytest.fixture(scope="module")
def dag(tmp_path_factory, prefect_harness) -> dict:
    """First run with one week's archive cut short (it fails, the others go on), then `rerun --failed`."""
    from designclip.flows.pipeline import PipelineFailed, pipeline_flow

    mirror = tmp_path_factory.mktemp("mirror")
    build_bdss_mirror(sample_patents_dir(), mirror)
    bad = mirror / "data/patent/grant/redbook/2021" / f"{layout.week_id(BAD)}.tar"
    good_bytes = bad.read_bytes()
    bad.write_bytes(good_bytes[: len(good_bytes) // 3])
    data = tmp_path_factory.mktemp("pipeline") / "data"
    with pytest.raises(PipelineFailed) as failed:
        pipeline_flow(start=START, end=END, data_root=str(data), until="release", base_url=mirror.as_uri(),
                      release=RELEASE)
    first = failed.value.summary
    before = files_with_mtimes(data, "shards", "captions")
    bad.write_bytes(good_bytes)  # the mirror serves a whole archive again
    return {"mirror": mirror, "data": data, "first": first, "before": before}


def test_a_bad_week_fails_the_run_but_not_the_other_weeks(dag):
    first = dag["first"]
    assert first["failed"] == ["ingest"]
    assert "I20210406.tar is not a valid tar archive" in first["stages"]["ingest"]["error"]  # refused at download
    assert first["stages"]["render"]["recomputed"] == 2 and first["stages"]["caption"]["recomputed"] >= 2
    assert first["stages"]["release"]["status"] == "not run"  # nothing is released from a range with failures
    data = DataFolder(dag["data"])
    assert data.exists(layout.failure_record("ingest", BAD))
    assert not data.exists(layout.release_marker(RELEASE))


def test_rerun_failed_redoes_only_the_failed_week(dag, capsys):
    data = dag["data"]
    assert cli(["rerun", "--failed", *range_args(dag["mirror"])], data) == 0
    out = capsys.readouterr().out
    after = files_with_mtimes(data, "shards", "captions")
    unchanged = {k for k, t in dag["before"].items() if after.get(k) == t}
    assert unchanged == set(dag["before"])  # zero finished shards or captions recomputed (mtimes)
    new = sorted(set(after) - set(dag["before"]))
    assert new and all(layout.week_id(BAD) in k for k in new)
    assert DataFolder(data).exists(layout.release_marker(RELEASE))
    assert "ingest       1 computed,    2 already done" in out
    assert "render       1 computed,    2 already done" in out
    assert "release      1 computed,    0 already done" in out
    assert f"Release {RELEASE} released" in out


def test_cpu_profile_is_chosen_without_cuda_and_logged(dag, prefect_harness, caplog):
    import torch
    from designclip.flows.pipeline import pipeline_flow

    assert not torch.cuda.is_available()
    logging.getLogger("prefect.flow_runs").setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger="prefect.flow_runs"):
        state = pipeline_flow(start=START, end=END, data_root=str(dag["data"]), until="release",
                              base_url=dag["mirror"].as_uri(), release=RELEASE, return_state=True)
    summary = state.result()
    assert summary["profile"]["gpu"] is False and summary["profile"]["caption"]["backend"] == "metadata"
    assert summary["profile"]["train"]["model"] == "designclip-tiny" and summary["profile"]["train"]["steps"] == 40
    line = "CPU profile (no CUDA GPU found): metadata captions, designclip-tiny, 40 steps at batch 16"
    assert any(r.getMessage().startswith(line) for r in caplog.records)
    assert {s: v["recomputed"] for s, v in summary["stages"].items()} == dict.fromkeys(DATA_STAGES, 0)
    # --keep-raw none (the default): no weekly archive stays under raw/, only the manifests; the summary sizes areas
    assert not list((dag["data"] / "raw").rglob("*.tar")) and list((dag["data"] / "raw").rglob("*.tar.json"))
    assert summary["disk"]["raw"] < 100_000 < summary["disk"]["images"] and summary["disk"]["releases"] > 0
    dag["flow_run_id"] = str(state.state_details.flow_run_id)


def test_rerun_of_a_flow_run_by_id_uses_its_parameters(dag, capsys):
    before = files_with_mtimes(dag["data"], "shards", "captions", "releases")
    assert cli(["rerun", dag["flow_run_id"]], dag["data"]) == 0
    out = capsys.readouterr().out
    assert "caption      0 computed" in out and "release      0 computed,    1 already done" in out
    assert "train" not in out.split("Stages")[1]  # the recorded run stopped after release; so does its rerun
    assert files_with_mtimes(dag["data"], "shards", "captions", "releases") == before


def test_force_render_redoes_render_caption_release_byte_identically(dag, capsys):
    data = dag["data"]
    shards = tar_digests(data, "shards", f"releases/{RELEASE}")
    raw = files_with_mtimes(data, "raw", "patents", "images", "_stats/ingest")
    assert cli(["rerun", "--force", "render", *range_args(dag["mirror"])], data) == 0
    out = capsys.readouterr().out
    removed = [line.strip() for line in out.split("outputs of render and later stages\n")[1].split("\n\n")[0]
               .splitlines() if line.startswith("  ")]
    assert set(removed) >= {layout.stats_marker(layout.render_stage("px512"), w) for w in WEEKS}
    assert set(removed) >= {layout.shard_dir("px512", w) for w in WEEKS} | {layout.release_dir(RELEASE)}
    assert sum(1 for r in removed if r.startswith("captions/px512/")) == 3
    assert not [r for r in removed if r.startswith(("raw/", "patents/", "images/", "_stats/ingest"))]
    assert files_with_mtimes(data, "raw", "patents", "images", "_stats/ingest") == raw  # ingest untouched
    assert "render       3 computed,    0 already done" in out and "ingest       0 computed,    3 already done" in out
    assert "release      1 computed,    0 already done" in out
    assert tar_digests(data, "shards", f"releases/{RELEASE}") == shards  # same bytes as before
