"""The command line as users run it: the demo on the bundled sample, and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_table

from designclip.cli.main import main


@pytest.mark.usefixtures("prefect_harness")
def test_demo_ingests_the_bundled_sample_and_rerun_skips(tmp_path: Path, capsys) -> None:
    data = str(tmp_path / "data")
    assert main(["--data-root", data, "demo"]) == 0
    out = capsys.readouterr().out
    assert "patents/       30 rows" in out and "figures/      262 rows" in out
    folder = DataFolder(data)
    patents = read_table(folder, "patents", columns=["patent_id", "uspc_class"]).to_pylist()
    assert len(patents) == 30 and read_table(folder, "errors").num_rows == 0
    classes = {r["uspc_class"] for r in patents}
    titles = read_table_titles(folder)
    assert classes <= set(titles), "every patent's US class joins with the shipped class table"
    markers = sorted(Path(data, "_stats/ingest").glob("*.json"))
    assert len(markers) == 20
    mtimes = [m.stat().st_mtime for m in markers]
    assert "Rendered 262 views" in out and "Release sample-2021 released" in out
    assert "Captioned 262 of 262 views with caption set metadata-1 (0 failures, 0 of" in out
    assert "Run sample-2021-tiny trained: step 40 of 40" in out
    model_dir = Path(data, "models", "sample-2021-tiny")
    assert (model_dir / "open_clip_config.json").exists()
    assert Path(data, "runs", "sample-2021-tiny", "loss.png").exists()
    release = Path(data, "releases", "sample-2021")
    sizes = sum(sum(json.loads((release / s / "sizes.json").read_text()).values()) for s in ("train", "val", "test"))
    assert sizes == 262 and (release / "README.md").exists() and (release / "release.json").exists()
    assert len(list(Path(data, "previews", "px512").glob("*.png"))) == 20
    assert "Embedded 262 views of release sample-2021 with sample-2021-tiny (0 unreadable" in out
    assert "Index image built: Flat over 262 vectors" in out and "Index text built" in out
    reports = Path(data, "reports", "sample-2021")
    for tag in ("sample-2021-tiny", "designclip-tiny-random"):
        assert json.loads((reports / tag / "report.json").read_text())["model"]["tag"] == tag
        assert (reports / tag / "recall.png").stat().st_size > 0
    assert len(list(reports.glob("compare-*.md"))) == 1
    hits = [line for line in out.splitlines() if re.match(r"^ +\d+\. +-?\d\.\d{3}  USD\d{7}  FIG\. ", line)]
    assert len(hits) == 8, out[-2000:]
    assert Path(data, "search-example.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shard_mtimes = [p.stat().st_mtime for p in sorted(Path(data, "shards").rglob("*.tar"))]
    assert main(["--data-root", data, "demo"]) == 0
    assert [m.stat().st_mtime for m in markers] == mtimes
    assert [p.stat().st_mtime for p in sorted(Path(data, "shards").rglob("*.tar"))] == shard_mtimes
    again = capsys.readouterr().out
    assert "already released (unchanged)" in again and "Run sample-2021-tiny already trained" in again
    shards = len(list(Path(data, "shards").rglob("*.tar")))
    assert f"caption set metadata-1 (0 failures, {shards} of {shards} shards already done)" in again
    assert "3 of 3 shards already done" in again and "Index image unchanged" in again
    assert "report unchanged" in again
    txt = {m["key"]: m["txt"] for m in _release_samples(release)}
    assert len(txt) == 262 and all(txt.values())


def _release_samples(release: Path) -> list[dict]:
    import webdataset as wds

    urls = sorted(str(p) for p in release.glob("*/*.tar"))
    return [{"key": s["__key__"], "txt": s["txt"].decode()} for s in wds.WebDataset(urls, shardshuffle=False)]


def read_table_titles(folder: DataFolder) -> dict[str, str]:
    import pyarrow.parquet as pq

    table = pq.read_table(folder.path("classes/us_design_classes.parquet")).to_pylist()
    assert [r["index"] for r in table] == list(range(33))
    return {r["uspc_class"]: r["title"] for r in table}


def test_bad_dates_and_missing_range_give_clear_errors(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--start", "2021-13-01", "--end", "2021-12-31"])
    assert "not a date like 2021-01-05" in capsys.readouterr().err
    assert main(["--data-root", str(tmp_path), "ingest", "--start", "2021-01-01"]) == 2
    assert "give --start and --end" in capsys.readouterr().err


def test_search_needs_a_query_or_a_drawing_and_names_the_missing_stage(tmp_path: Path, capsys) -> None:
    assert main(["--data-root", str(tmp_path), "search", "--release", "v1", "--model", "m"]) == 1
    assert "give a text query or --image FILE" in capsys.readouterr().err
    (tmp_path / "releases" / "v1").mkdir(parents=True)
    (tmp_path / "releases" / "v1" / "release.json").write_text("{}")  # a release, not yet embedded
    assert main(["--data-root", str(tmp_path), "search", "a chair", "--release", "v1", "--model", "m"]) == 1
    assert "designclip embed --release v1 --model m" in capsys.readouterr().err


def test_search_and_evaluate_commands_on_the_embedded_release(embedded_v1: dict, tmp_path: Path, capsys) -> None:
    from designclip.pipeline.index.driver import build_release_index

    root, release = embedded_v1["data_root"], embedded_v1["release"]
    build_release_index(root, release, embedded_v1["tag"])
    out_png = tmp_path / "hits.png"
    args = ["--data-root", root, "search", "a shoe", "--release", release, "--model", embedded_v1["model"]]
    assert main([*args, "-k", "3", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "3 designs for 'a shoe'" in out and out_png.read_bytes()[:4] == b"\x89PNG"
    assert main(["--data-root", root, "evaluate", "--release", release, "--model", embedded_v1["model"],
                 "--deeppatent-queries", "q.txt"]) == 1
    assert "needs all of --deeppatent-queries, --deeppatent-db and --deeppatent-images" in capsys.readouterr().err
