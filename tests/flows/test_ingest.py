"""The ingest flow end to end: a real HTTP mirror on 127.0.0.1, real archives, embedded Prefect."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import pytest
from designclip.flows.ingest import IngestFailed, ingest_flow
from designclip.pipeline.ingest.mirror import build_bdss_mirror, build_weekly_tar
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_marker, read_table

from tests.conftest import patent_folder
from tests.fixtures.builders import faulty_week
from tests.fixtures.httpmirror import FaultPlan, serve_mirror

pytestmark = pytest.mark.usefixtures("prefect_harness")

JAN_MAR = (dt.date(2021, 1, 1), dt.date(2021, 3, 24))  # weeks 01-05, 02-09, 02-23, 03-16, 03-23


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory: pytest.TempPathFactory, ) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    build_bdss_mirror(Path(__file__).resolve().parents[2] / "designclip/sample/patents", root)
    return root


def _archive_gets(mirror, name: str) -> int:
    return sum(1 for r in mirror.requests if r.method == "GET" and r.path.endswith(name))


def test_faults_then_rerun_redoes_only_the_failed_week(mirror_root: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    faults = FaultPlan(
        status_then_ok={"I20210105.tar": [429, 503]},
        cut_after_bytes={"I20210223.tar": 200_000},
        html_instead={"I20210316.tar"},
    )
    with serve_mirror(mirror_root, faults) as mirror, pytest.raises(IngestFailed) as failure:
        ingest_flow(start=JAN_MAR[0], end=JAN_MAR[1], data_root=data, base_url=mirror.base_url)
    assert "I20210316.tar" in str(failure.value) and "HTML" in str(failure.value)
    assert any(r.headers.get("Range") for r in mirror.requests if r.path.endswith("I20210223.tar"))

    folder = DataFolder(data)
    weeks = [dt.date(2021, 1, 5), dt.date(2021, 2, 9), dt.date(2021, 2, 23), dt.date(2021, 3, 16), dt.date(2021, 3, 23)]
    done = {w: read_marker(folder, "ingest", w) for w in weeks}
    assert [w.isoformat() for w, m in done.items() if m is None] == ["2021-03-16"]
    assert not folder.exists("raw/2021/I20210316.tar"), "an HTML page must never be kept as the archive"
    patents_before = read_table(folder, "patents").num_rows
    assert patents_before == 2 + 2 + 1 + 1  # 01-05, 02-09 (+02-23 one, 03-23 one)
    marker_times = {w: os.path.getmtime(folder.path(f"_stats/ingest/I{w:%Y%m%d}.json")) for w, m in done.items() if m}

    with serve_mirror(mirror_root) as mirror:
        rows = ingest_flow(start=JAN_MAR[0], end=JAN_MAR[1], data_root=data, base_url=mirror.base_url)
    assert {r["archive"]: r["status"] for r in rows} == {
        "I20210105.tar": "skipped (done)", "I20210209.tar": "skipped (done)", "I20210223.tar": "skipped (done)",
        "I20210316.tar": "done", "I20210323.tar": "skipped (done)"}
    assert [_archive_gets(mirror, n) for n in ("I20210105.tar", "I20210209.tar", "I20210316.tar")] == [0, 0, 1]
    for w, t in marker_times.items():
        assert os.path.getmtime(folder.path(f"_stats/ingest/I{w:%Y%m%d}.json")) == t, "finished weeks are untouched"
    assert read_table(folder, "patents").num_rows == patents_before + 4  # 03-16 holds four


def test_bad_members_become_error_rows_and_the_week_still_finishes(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    faulty_week(root / "data/patent/grant/redbook/2021/I20210209.tar")
    with serve_mirror(root) as mirror:
        rows = ingest_flow(start=dt.date(2021, 2, 1), end=dt.date(2021, 2, 28), data_root=str(tmp_path / "d"),
                           base_url=mirror.base_url)
    assert rows == [{"week": "2021-02-09", "archive": "I20210209.tar", "status": "done", "patents": 2,
                     "figures": 8, "sheets": 6, "errors": 4, "skipped_not_design": 1}]
    errors = read_table(DataFolder(tmp_path / "d"), "errors")
    assert sorted(errors.column("reason").to_pylist()) == ["corrupt_zip", "malformed_xml", "unsafe_path", "unsafe_path"]


def test_odp_source_with_api_key_never_logs_the_key(mirror_root: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    key = "sk-test-very-secret-4242"
    monkeypatch.setenv("USPTO_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    with serve_mirror(mirror_root, api_key=key) as mirror:
        rows = ingest_flow(start=dt.date(2021, 12, 1), end=dt.date(2021, 12, 31), data_root=str(tmp_path / "d"),
                           source="odp", base_url=mirror.base_url)
        signed = [r for r in mirror.requests if r.path.startswith("/signed/")]
    assert [r["archive"] for r in rows] == ["I20211207.tar", "I20211221.tar", "I20211228.tar"]
    assert signed and all("X-API-KEY" not in r.headers for r in signed)
    assert key not in caplog.text
    manifests = list((tmp_path / "d" / "raw").rglob("*.json"))
    assert manifests and all(key not in m.read_text() for m in manifests)


def test_corrupt_download_is_moved_aside_and_fetched_again(mirror_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    week = (dt.date(2021, 1, 1), dt.date(2021, 1, 10))
    with serve_mirror(mirror_root) as mirror:
        ingest_flow(start=week[0], end=week[1], data_root=str(data), base_url=mirror.base_url,
                    keep_raw="all")
    raw = data / "raw/2021/I20210105.tar"
    # A kept archive (--keep-raw all) damaged on disk, its week forgotten: the next run must notice, quarantine
    # and re-download it.
    raw.write_bytes(raw.read_bytes()[:1024] + b"\0" * 10)
    (data / "_stats/ingest/I20210105.json").unlink()
    with serve_mirror(mirror_root) as mirror, pytest.raises(IngestFailed, match="downloaded again"):
        ingest_flow(start=week[0], end=week[1], data_root=str(data), base_url=mirror.base_url,
                    keep_raw="all")
    assert (data / "raw/2021/I20210105.tar.corrupt").exists()
    with serve_mirror(mirror_root) as mirror:
        rows = ingest_flow(start=week[0], end=week[1], data_root=str(data), base_url=mirror.base_url,
                           keep_raw="all")
    assert rows[0]["status"] == "done" and rows[0]["patents"] == 2


def test_a_revised_archive_replaces_the_week(tmp_path: Path) -> None:
    root, data = tmp_path / "mirror", tmp_path / "d"
    year = root / "data/patent/grant/redbook/2021"
    week = dt.date(2021, 1, 5)
    build_weekly_tar(week, [patent_folder("USD0907292"), patent_folder("USD0907293")], year / "I20210105.tar")
    with serve_mirror(root) as mirror:
        ingest_flow(start=week, end=week, data_root=str(data), base_url=mirror.base_url)
    build_weekly_tar(week, [patent_folder("USD0907292")], year / "I20210105_r1.tar")
    with serve_mirror(root) as mirror:
        rows = ingest_flow(start=week, end=week, data_root=str(data), base_url=mirror.base_url)
    assert rows[0]["archive"] == "I20210105_r1.tar" and rows[0]["status"] == "done"
    patents = read_table(DataFolder(data), "patents", columns=["patent_id", "source_archive"]).to_pylist()
    assert patents == [{"patent_id": "USD0907292", "source_archive": "I20210105_r1.tar"}]


def test_a_revision_makes_the_weeks_views_and_captions_again(tmp_path: Path) -> None:
    from designclip.pipeline.render.driver import RENDER, RenderStageOptions
    from designclip.pipeline.render.patent_views import RenderOptions

    root, folder = tmp_path / "mirror", DataFolder(tmp_path / "d")
    year, week = root / "data/patent/grant/redbook/2021", dt.date(2021, 1, 5)
    options = RenderStageOptions(RenderOptions(size=128))
    build_weekly_tar(week, [patent_folder("USD0907292"), patent_folder("USD0907293")], year / "I20210105.tar")
    with serve_mirror(root) as mirror:
        ingest_flow(start=week, end=week, data_root=folder.url, base_url=mirror.base_url)
    first = RENDER.run(folder, week, options)
    assert first.stats["patents"] == 2 and RENDER.is_done(folder, week, options)
    captions = folder.path("captions/px128/metadata-1/I20210105")  # a caption set's output for the week
    Path(captions).mkdir(parents=True)
    (Path(captions) / "00000.stats.json").write_text("{}")

    build_weekly_tar(week, [patent_folder("USD0907292")], year / "I20210105_r1.tar")
    with serve_mirror(root) as mirror:
        ingest_flow(start=week, end=week, data_root=folder.url, base_url=mirror.base_url)
    marker = read_marker(folder, "ingest", week)
    assert marker["source_archive"] == "I20210105_r1.tar" and marker["revised_from"] == "I20210105.tar"
    assert not RENDER.is_done(folder, week, options) and not Path(captions).exists()
    again = RENDER.run(folder, week, options)
    assert not again.skipped and again.stats["patents"] == 1  # cut from the revised sheets only


def _tables(folder: DataFolder) -> dict[str, list[dict]]:
    return {name: sorted(read_table(folder, name).to_pylist(), key=repr) for name in ("patents", "figures", "sheets")}


def test_keep_raw_none_deletes_ingested_downloads_keeps_manifests_and_the_same_tables(mirror_root: Path,
                                                                                      tmp_path: Path) -> None:
    from designclip.pipeline.dag.stages import invalidate

    span = (dt.date(2021, 1, 1), dt.date(2021, 2, 10))  # weeks 01-05 and 02-09
    kept, lean = DataFolder(str(tmp_path / "all")), DataFolder(str(tmp_path / "none"))
    with serve_mirror(mirror_root) as mirror:
        ingest_flow(start=span[0], end=span[1], data_root=kept.url, base_url=mirror.base_url, keep_raw="all")
        ingest_flow(start=span[0], end=span[1], data_root=lean.url, base_url=mirror.base_url)  # default: none
    names = ("I20210105.tar", "I20210209.tar")
    assert all(kept.exists(f"raw/2021/{n}") and kept.exists(f"raw/2021/{n}.json") for n in names)
    assert not any(lean.exists(f"raw/2021/{n}") for n in names), "an ingested download must not stay under raw/"
    assert all(lean.read_json(f"raw/2021/{n}.json")["sha256"] == kept.read_json(f"raw/2021/{n}.json")["sha256"]
               for n in names), "the manifest (URL, size, sha256) is kept"
    assert _tables(lean) == _tables(kept)

    with serve_mirror(mirror_root) as mirror:  # a rerun downloads nothing: the weeks are done
        rows = ingest_flow(start=span[0], end=span[1], data_root=lean.url, base_url=mirror.base_url)
        assert {r["status"] for r in rows} == {"skipped (done)"} and not any(_archive_gets(mirror, n) for n in names)
    invalidate(lean, "ingest", weeks=[dt.date(2021, 1, 5)])  # what `rerun --force ingest` does
    with serve_mirror(mirror_root) as mirror:
        rows = ingest_flow(start=span[0], end=span[1], data_root=lean.url, base_url=mirror.base_url)
        assert _archive_gets(mirror, "I20210105.tar") >= 1 and not _archive_gets(mirror, "I20210209.tar")
    assert {r["archive"]: r["status"] for r in rows} == {"I20210105.tar": "done", "I20210209.tar": "skipped (done)"}
    assert not lean.exists("raw/2021/I20210105.tar") and _tables(lean) == _tables(kept)


def test_keep_raw_rejects_an_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--keep-raw 'some': use one of none, all"):
        ingest_flow(start=JAN_MAR[0], end=JAN_MAR[1], data_root=str(tmp_path), base_url="file:///nowhere",
                    keep_raw="some")
