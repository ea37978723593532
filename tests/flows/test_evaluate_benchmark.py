"""`designclip evaluate --deeppatent-lists DIR --deeppatent-images DIR` through the flow: the benchmark's test and val
lists of real fixture sheets scored beside the published rows in the report, and the flags' errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from designclip.cli.main import main
from tests.pipeline.evaluate.test_benchmark import fixture_benchmark


def copied_release(embedded_v1: dict, root: Path) -> tuple[Path, str]:
    """Release v1 and its vectors copied to a fresh data root (reports written there stay this test's); (root, tag)."""
    from designclip.storage import layout

    src, tag = Path(embedded_v1["data_root"]), embedded_v1["tag"]
    for rel in (layout.release_dir("v1"), layout.embed_dir("v1", tag)):
        shutil.copytree(src / rel, root / rel)
    return root, tag


def test_cli_scores_a_deeppatent_benchmark_folder(embedded_v1: dict, tmp_path: Path, capsys,
                                                  prefect_harness) -> None:
    from designclip.storage import layout

    root, tag = copied_release(embedded_v1, tmp_path / "data")
    lists, images, _ = fixture_benchmark(tmp_path / "deeppatent")
    base = ["--data-root", str(root), "evaluate", "--release", "v1", "--model", embedded_v1["model"],
            "--patents-5k", "50"]
    assert main([*base, "--deeppatent-lists", str(tmp_path / "deeppatent")]) == 1
    assert "--deeppatent-lists needs --deeppatent-images DIR" in capsys.readouterr().err
    assert main([*base, "--deeppatent-lists", str(lists), "--deeppatent-queries", "q.txt",
                 "--deeppatent-images", str(images)]) == 1
    assert "not both" in capsys.readouterr().err
    assert main([*base, "--deeppatent-lists", str(tmp_path / "deeppatent"), "--deeppatent-images", str(images)]) == 0
    printed = capsys.readouterr().out
    assert "DeepPatent val mAP" in printed and "DeepPatent P@1" in printed
    report = json.loads((root / layout.report_dir("v1", tag) / "report.json").read_text())
    bench = report["deeppatent_benchmark"]
    assert set(bench["splits"]) == {"test", "val"} and bench["lists_dir"] == str(lists)
    assert report["inputs"]["settings"]["deeppatent_lists"]["val_query_list"]["size"] > 0
    markdown = (root / layout.report_dir("v1", tag) / "report.md").read_text()
    assert "| PatentNet (Kucer et al., WACV 2022) (published, not measured here) | sheets | test |" in markdown


def test_release_path_skips_missing_images_only_when_asked(embedded_v1: dict, tmp_path: Path, capsys,
                                                           prefect_harness) -> None:
    from designclip.storage import layout

    root, tag = copied_release(embedded_v1, tmp_path / "data")
    lists, images, sheets = fixture_benchmark(tmp_path / "deeppatent")
    gone = sorted(sheets.values())[-1][-1]  # a database sheet of both splits
    (images / gone).unlink()
    argv = ["evaluate", "--release", "v1", "--model", embedded_v1["model"], "--patents-5k", "50",
            "--deeppatent-lists", str(lists), "--deeppatent-images", str(images)]
    assert main(["--data-root", str(root), *argv]) == 1
    assert "1 of 11 listed DeepPatent images are missing" in capsys.readouterr().err
    assert main(["--data-root", str(root), *argv, "--skip-missing-images"]) == 0
    report = json.loads((root / layout.report_dir("v1", tag) / "report.json").read_text())
    splits = report["deeppatent_benchmark"]["splits"]
    assert [(splits[s]["missing_images"], splits[s]["listed_images"]) for s in ("test", "val")] == [(1, 11), (1, 7)]
    assert splits["test"]["missing_examples"] == [gone] and report["inputs"]["settings"]["skip_missing_images"]
