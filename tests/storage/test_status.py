"""`designclip status` reads only the data root: real sample weeks ingested from a mirror, one archive corrupt."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from designclip.pipeline.dag.status_table import format_status
from designclip.storage import layout
from designclip.storage.folder import DataFolder, DataRootError
from designclip.storage.status import collect_status, grant_weeks
from designclip.storage.tables import read_week_table

from designclip.cli.status import add_commands

GOOD = [dt.date(2021, 4, 6), dt.date(2021, 5, 4)]  # real sample weeks (one FIG. per sheet: cheap to render)
CORRUPT = dt.date(2021, 4, 13)  # downloaded, then its stored archive is overwritten with random bytes
BAD_DOWNLOAD = dt.date(2021, 5, 18)  # the mirror serves random bytes: the download refuses it
NEVER = [dt.date(2021, 4, 20), dt.date(2021, 4, 27), dt.date(2021, 5, 11)]  # in the range, never published
RANGE = (dt.date(2021, 4, 1), dt.date(2021, 5, 20))


@pytest.fixture(scope="module")
def weeks_root(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    """The ingest flow over a mirror of three real weeks and one of random bytes (its download fails); the stored
    archive of one real week is then corrupted and the flow rerun (its parse fails). Both good weeks rendered
    (the second one patent per shard); metadata captions for all of the first week, only shard 0 of the second."""
    from designclip.flows.ingest import IngestFailed, ingest_flow
    from designclip.pipeline.caption.backends import make_captioner
    from designclip.pipeline.caption.driver import caption_shard_file, prepare_set
    from designclip.pipeline.ingest.mirror import build_weekly_tar, group_by_week
    from designclip.pipeline.render.driver import RENDER, RenderStageOptions
    from designclip.storage.captions import rendered_shards

    from tests.conftest import SAMPLE
    from tests.fixtures.httpmirror import serve_mirror

    root = tmp_path_factory.mktemp("status")
    year = root / "mirror/data/patent/grant/redbook/2021"
    by_week = group_by_week(SAMPLE)
    for week in [*GOOD, CORRUPT]:
        build_weekly_tar(week, by_week[week], year / f"I{week:%Y%m%d}.tar")
    (year / f"I{BAD_DOWNLOAD:%Y%m%d}.tar").write_bytes(os.urandom(20_000))
    data = root / "data"
    with serve_mirror(root / "mirror") as mirror:
        with pytest.raises(IngestFailed, match="I20210518.tar is not a valid tar"):
            ingest_flow(start=RANGE[0], end=RANGE[1], data_root=str(data), base_url=mirror.base_url, keep_raw="all")
        raw = data / layout.raw_archive(CORRUPT, f"I{CORRUPT:%Y%m%d}.tar")
        raw.write_bytes(os.urandom(raw.stat().st_size))
        (data / layout.stats_marker("ingest", CORRUPT)).unlink()
        with pytest.raises(IngestFailed, match="I20210413.tar is unreadable"):
            ingest_flow(start=RANGE[0], end=RANGE[1], data_root=str(data), base_url=mirror.base_url, keep_raw="all")
    RENDER.run(DataFolder(data), GOOD[0])
    RENDER.run(DataFolder(data), GOOD[1], RenderStageOptions(max_samples=1))
    captioner = make_captioner("metadata")
    caption_set = prepare_set(str(data), "px512", captioner)
    for ref in rendered_shards(DataFolder(data), "px512"):
        if ref.week == GOOD[0] or ref.number == 0:
            caption_shard_file(str(data), "px512", ref, captioner, caption_set)
    return data


def _views_on_disk(data: Path, week: dt.date) -> tuple[int, int]:
    """(shard tars, PNG members in them), counted from the tars themselves."""
    tars = sorted((data / layout.shard_dir("px512", week)).glob("*.tar"))
    pngs = 0
    for tar in tars:
        with tarfile.open(tar) as t:
            pngs += sum(1 for m in t if m.name.endswith(".png"))
    return len(tars), pngs


def _by_week(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["week"]: w for w in status["weeks"]}


def test_grant_weeks_are_the_tuesdays_of_a_range() -> None:
    assert grant_weeks(*RANGE) == sorted([*GOOD, CORRUPT, BAD_DOWNLOAD, *NEVER])
    assert grant_weeks(dt.date(2021, 4, 7), dt.date(2021, 4, 12)) == []
    assert grant_weeks(dt.date(2021, 4, 13), dt.date(2021, 4, 13)) == [CORRUPT]


def test_done_weeks_show_done_with_their_counts(weeks_root: Path) -> None:
    status = collect_status(str(weeks_root), *RANGE)
    weeks = _by_week(status)
    assert list(weeks) == [w.isoformat() for w in sorted([*GOOD, CORRUPT, BAD_DOWNLOAD, *NEVER])]
    (caption_set,) = status["caption_sets"]
    assert status["caption_sets"][caption_set]["backend"] == "metadata"
    folder = DataFolder(weeks_root)
    for week in GOOD:
        row = weeks[week.isoformat()]
        shards, views = _views_on_disk(weeks_root, week)
        assert row["ingest"]["state"] == "done" and row["ingest"]["archive"] == f"I{week:%Y%m%d}.tar"
        assert row["ingest"]["patents"] == read_week_table(folder, "patents", week).num_rows > 0
        assert row["render"]["state"] == "done"
        assert (row["render"]["shards"], row["render"]["views"]) == (shards, views) and views > 0
        assert row["ingest"]["raw"]["downloaded"] == [f"I{week:%Y%m%d}.tar"]
    first = weeks[GOOD[0].isoformat()]["captions"][caption_set]
    assert first["state"] == "done" and first["shards_done"] == first["shards"]
    assert first["captioned"] + first["failures"] == weeks[GOOD[0].isoformat()]["render"]["views"]
    second = weeks[GOOD[1].isoformat()]["captions"][caption_set]
    shards, _ = _views_on_disk(weeks_root, GOOD[1])
    assert shards > 1, "the second week is rendered in several shards"
    assert second["state"] == "partial" and (second["shards_done"], second["shards"]) == (1, shards)
    assert second["samples"] < weeks[GOOD[1].isoformat()]["render"]["views"]


def test_a_corrupt_week_is_failed_with_its_error_and_does_not_hide_the_others(weeks_root: Path) -> None:
    status = collect_status(str(weeks_root), *RANGE)
    bad = _by_week(status)[CORRUPT.isoformat()]
    assert bad["ingest"]["state"] == "failed" and bad["ingest"]["archive"] == "I20210413.tar"
    assert "unreadable" in bad["ingest"]["error"]
    assert bad["ingest"]["raw"]["corrupt"] == ["I20210413.tar"], "the bad download was moved aside"
    assert bad["render"]["state"] == "missing"
    assert bad["last_error"].startswith("ingest: ") and "unreadable" in bad["last_error"]
    refused = _by_week(status)[BAD_DOWNLOAD.isoformat()]["ingest"]
    assert refused["state"] == "failed" and refused["error"].startswith("download: ")
    assert "not a valid tar archive" in refused["error"] and refused["raw"]["downloaded"] == []
    assert status["summary"]["ingest"] == {"done": 2, "failed": 2, "missing": 3}
    text = format_status(status)
    line = next(x for x in text.splitlines() if x.startswith("2021-04-13"))
    assert " failed " in line and "unreadable" in line
    done_lines = [x for x in text.splitlines() if x.startswith(tuple(w.isoformat() for w in GOOD))]
    assert len(done_lines) == 2 and all(" done " in x for x in done_lines)


def test_garbage_given_as_a_local_archive_is_a_failed_week(tmp_path: Path, prefect_harness: None) -> None:
    from designclip.flows.ingest import IngestFailed, ingest_flow

    garbage = tmp_path / "I20210601.tar"
    garbage.write_bytes(os.urandom(5000))
    with pytest.raises(IngestFailed, match="unreadable"):
        ingest_flow(start=dt.date.min, end=dt.date.max, data_root=str(tmp_path / "d"), archives=[str(garbage)])
    (week,) = collect_status(str(tmp_path / "d"))["weeks"]
    assert (week["week"], week["ingest"]["state"], week["ingest"]["archive"]) == ("2021-06-01", "failed",
                                                                                  "I20210601.tar")
    assert "unreadable" in week["ingest"]["error"] and week["ingest"]["failed_at"]


def test_a_week_in_the_range_never_ingested_is_missing(weeks_root: Path) -> None:
    weeks = _by_week(collect_status(str(weeks_root), *RANGE))
    for week in NEVER:
        row = weeks[week.isoformat()]
        assert (row["ingest"]["state"], row["render"]["state"]) == ("missing", "missing")
        assert all(c["state"] == "missing" for c in row["captions"].values()) and row["last_error"] is None
    everything = [w["week"] for w in collect_status(str(weeks_root))["weeks"]]
    assert everything == [w.isoformat() for w in sorted([*GOOD, CORRUPT, BAD_DOWNLOAD])], \
        "no range: only weeks with a trace"
    only = collect_status(str(weeks_root), start=dt.date(2021, 4, 10), end=dt.date(2021, 5, 5))["weeks"]
    assert [w["week"] for w in only] == [CORRUPT.isoformat(), *(w.isoformat() for w in NEVER[:2]),
                                         GOOD[1].isoformat()]
    later = collect_status(str(weeks_root), start=dt.date(2021, 5, 1))["weeks"]
    assert [w["week"] for w in later] == [GOOD[1].isoformat(), BAD_DOWNLOAD.isoformat()], "open range: no gaps"
    with pytest.raises(ValueError, match="after"):
        collect_status(str(weeks_root), RANGE[1], RANGE[0])
    with pytest.raises(FileNotFoundError, match="no data root"):
        collect_status(str(weeks_root / "typo"))


def test_a_crashed_release_shows_as_leftovers_beside_a_finished_one(weeks_root: Path, tmp_path: Path) -> None:
    from designclip.pipeline.release.driver import build_release

    data = tmp_path / "data"
    shutil.copytree(weeks_root, data)
    done = build_release("r1", str(data), ratios="50/25/25", shard_samples=3)

    def crash(split: str, info: dict[str, Any]) -> None:
        raise RuntimeError("killed after the first shard")

    with pytest.raises(RuntimeError, match="killed"):
        build_release("r2", str(data), ratios="50/25/25", shard_samples=3, on_shard=crash)
    assert not (data / layout.release_marker("r2")).exists() and (data / layout.release_dir("r2")).exists()
    releases = {r["version"]: r for r in collect_status(str(data))["releases"]}
    assert releases["r1"]["state"] == "done" and releases["r1"]["samples"] == done["samples"]
    for split in ("train", "val", "test"):
        sizes = json.loads((data / layout.release_file("r1", layout.release_sizes_name(split))).read_text())
        assert releases["r1"]["splits"][split]["samples"] == sum(sizes.values())
        assert releases["r1"]["splits"][split]["shards"] == len(sizes)
    assert releases["r2"]["state"] == "leftovers" and releases["r2"]["shards"] == 1
    assert "release.json" in releases["r2"]["error"]
    text = format_status(collect_status(str(data)))
    assert any(x.startswith("r2") and "leftovers" in x for x in text.splitlines())


def test_dataset_stages_of_the_real_release(embedded_v1: dict, tmp_path: Path) -> None:
    """release v1, its embeddings and image index, one finished and one stopped training run."""
    from designclip.pipeline.index.driver import build_release_index
    from designclip.pipeline.train.driver import train_run
    from designclip.pipeline.train.loop import LoopSettings, TrainOptions
    from designclip.pipeline.train.model_configs import tiny_model_config

    data = tmp_path / "data"
    shutil.copytree(embedded_v1["data_root"], data, ignore=shutil.ignore_patterns("indexes", "reports", "runs",
                                                                                  "models"))
    tag = embedded_v1["tag"]
    # The session's shared root also holds what other tests made there (other releases, a baseline's vectors):
    # keep only release v1 and the tiny export's vectors, so the table below is known exactly.
    made_elsewhere = [*(data / "releases").iterdir(), *(data / "embeddings").iterdir(),
                      *(data / "embeddings/v1").iterdir()]
    for extra in made_elsewhere:
        if extra.name not in ("v1", tag) and extra.exists():
            shutil.rmtree(extra)
    card = build_release_index(str(data), "v1", tag, "image")
    options = TrainOptions(model="designclip-tiny", model_config=tiny_model_config(), batch_size=8, steps=4,
                           warmup_steps=1)
    train_run(str(data), "v1", "whole", TrainOptions(**{**options.__dict__, "steps": 2}),
              LoopSettings(checkpoint_every=2, log_every=1, workers=0))
    train_run(str(data), "v1", "stopped", options, LoopSettings(checkpoint_every=2, log_every=1, workers=0,
                                                                  stop_after=2))
    (data / "indexes/v1" / tag / "text").mkdir(parents=True)  # a text index build that died before its card

    status = collect_status(str(data))
    weeks = status["weeks"]
    assert sum(w["render"]["state"] == "done" for w in weeks) == 9
    assert [w["week"] for w in weeks if w["render"]["state"] == "missing"] == ["2021-12-07"]
    (release,) = status["releases"]
    marker = json.loads((data / layout.release_marker("v1")).read_text())
    assert release["state"] == "done" and release["samples"] == marker["samples"]
    assert {s: c["samples"] for s, c in release["splits"].items()} == {s: marker["splits"][s]["samples"]
                                                                       for s in ("train", "val", "test")}
    runs = {r["run"]: r for r in status["runs"]}
    assert runs["whole"]["state"] == "done"
    assert (runs["whole"]["step"], runs["whole"]["total_steps"], runs["whole"]["model_exported"]) == (2, 2, True)
    assert runs["stopped"]["state"] == "partial" and not runs["stopped"]["finished"]
    assert (runs["stopped"]["step"], runs["stopped"]["total_steps"]) == (2, 4)
    assert not runs["stopped"]["model_exported"] and runs["stopped"]["release"] == "v1"
    (out,) = status["outputs"]
    total = sum(len(json.loads((data / layout.release_file("v1", layout.release_sizes_name(s))).read_text()))
                for s in ("train", "val", "test"))
    assert (out["release"], out["model_tag"]) == ("v1", tag)
    assert out["embeddings"]["state"] == "done" and out["embeddings"]["shards_done"] == total == \
        out["embeddings"]["shards_total"]
    image = out["indexes"]["image"]
    assert image["state"] == "done" and image["factory"] == card["factory"]
    assert image["recall_at_10"] == card["recall_at_10"]
    assert out["indexes"]["text"]["state"] == "partial" and out["report"]["state"] == "missing"
    text = format_status(status)
    assert f"{card['factory']} r@10 {card['recall_at_10']:.3f}" in text
    assert any(x.startswith("stopped") and "2/4" in x and "partial" in x for x in text.splitlines())


def _cli(argv: list[str], data_root: Path) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    args = parser.parse_args(argv)
    args.data_root = str(data_root)
    assert args.func(args) == 0


def test_cli_prints_the_table_json_and_markdown(weeks_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    span = ["--start", RANGE[0].isoformat(), "--end", RANGE[1].isoformat()]
    _cli(["status", *span], weeks_root)
    text = capsys.readouterr().out
    header = next(x for x in text.splitlines() if x.startswith("week"))
    assert header.split()[:5] == ["week", "ingest", "patents", "render", "views"] and "last error" in header
    assert sum(1 for x in text.splitlines() if x[:10] in {w.isoformat() for w in grant_weeks(*RANGE)}) == 7
    disk_line = next(x for x in text.splitlines() if x.startswith("On disk: "))
    assert disk_line.startswith("On disk: raw ") and " images " in disk_line and "(total " in disk_line
    _cli(["status", *span, "--json"], weeks_root)
    printed = json.loads(capsys.readouterr().out)
    expected = collect_status(str(weeks_root), *RANGE)
    folder = DataFolder(weeks_root)
    assert sorted(printed["disk"]) == sorted(layout.AREAS) and printed["disk"]["releases"] == 0  # none built here
    assert printed["disk"]["raw"] == sum(p.stat().st_size for p in (weeks_root / "raw").rglob("*") if p.is_file())
    assert printed["disk"]["images"] == folder.du("images") > 0
    assert {**printed, "generated_at": None} == json.loads(json.dumps({**expected, "generated_at": None}))
    _cli(["status", "--markdown"], weeks_root)
    md = capsys.readouterr().out
    assert "| week | ingest | patents | render | views |" in md and "| 2021-04-13 | failed |" in md


def test_a_failed_render_and_an_ingest_failure_that_is_no_archive_error_show_as_failed(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    from designclip.pipeline.ingest import driver as ingest_driver
    from designclip.pipeline.ingest.archives import WeeklyArchive
    from designclip.pipeline.ingest.mirror import build_weekly_tar, group_by_week
    from designclip.pipeline.ingest.sample import ingest_sample_weeks, sample_patents_dir
    from designclip.pipeline.render.driver import RENDER

    rendered, ingested = dt.date(2021, 5, 4), dt.date(2021, 6, 29)
    data = tmp_path / "data"
    ingest_sample_weeks(data, [rendered], tmp_path)
    folder = DataFolder(data)
    images = data / layout.images_file(rendered)
    images.rename(images.with_suffix(".away"))  # the render of the week fails: its images are gone
    with pytest.raises(FileNotFoundError):
        RENDER.run(folder, rendered)
    tar = build_weekly_tar(ingested, group_by_week(sample_patents_dir())[ingested], tmp_path / "I20210629.tar")

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ingest_driver, "ingest_archive", no_space)
    with pytest.raises(DataRootError, match="no space left writing"):  # a full disk is no archive error
        ingest_driver.INGEST.run(folder, WeeklyArchive(week=ingested, name=tar.name, url=tar.as_uri(),
                                                       source="local"))
    status = collect_status(folder, dt.date(2021, 5, 1), dt.date(2021, 7, 1))
    weeks = {w["week"]: w for w in status["weeks"]}
    render = weeks[rendered.isoformat()]
    assert render["ingest"]["state"] == "done" and render["render"]["state"] == "failed"
    assert render["last_error"].startswith("render: FileNotFoundError") and "I20210504.tar" in render["last_error"]
    ingest = weeks[ingested.isoformat()]
    assert ingest["ingest"]["state"] == "failed" and ingest["ingest"]["archive"] == "I20210629.tar"
    assert ingest["last_error"].startswith("ingest: DataRootError: no space left writing")
    assert status["summary"]["render"]["failed"] == 1 and status["summary"]["ingest"]["failed"] == 1
    text = format_status(status, error_width=None)
    rows = {line[:10]: re.split(r"\s{2,}", line) for line in text.splitlines() if line.startswith("2021-")}
    assert rows["2021-05-04"][1:4] == ["done", "2", "failed"] and "FileNotFoundError" in rows["2021-05-04"][-1]
    assert rows["2021-06-29"][1] == "failed" and "no space left" in rows["2021-06-29"][-1]
