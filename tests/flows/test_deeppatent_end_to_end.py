"""DeepPatent from ingested weeks to a scored model, all through `designclip` (build -> train a tiny SwinV2 ->
evaluate): a rebuild lacking listed sheets is refused until --skip-missing-images, the report's mAPs and P@1 match a
hand computation on the present images, and a model trained on a listed patent is refused unless allowed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.deeppatent import LISTS, ingested_deeppatent_weeks, official_and_pml, unit
from tests.pipeline.train.test_deeppatent_data import TINY_SWINV2

TINY_TRAIN = ["--preset", "higuchi", "--model", "swinv2_tiny_window8_256", "--pretrained", "",
              "--timm-kwargs", json.dumps(TINY_SWINV2), "--image-size", "64", "--batch-size", "4", "--lr", "1e-3",
              "--lr-head", "5e-2", "--dropout", "0", "--workers", "0", "--log-every", "1"]


def cli(root: str, *argv: str) -> int:
    """`designclip --data-root ROOT ARGV...` through the real entry point; its exit status."""
    from designclip.cli.main import main

    return main(["--data-root", root, *argv])


def evaluate_args(build: Path, run: str, lists: Path | None = None) -> list[str]:
    """`evaluate` of run `run` on the rebuild's lists (or another lists folder) and images, without a release."""
    return ["evaluate", "--model", run, "--deeppatent-lists", str(lists or build / "lists"),
            "--deeppatent-images", str(build / "images")]


def list_lines(path: Path) -> list[str]:
    """The relative image paths a DeepPatent list names, in order."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def missing_by_build(build: Path, lines: list[str]) -> list[str]:
    """The lines missing.json accounts for: sheets it names, and every sheet of a week it did not build."""
    record = json.loads((build / "missing.json").read_text())
    named = {s["path"] for s in record["sheets"]}
    weeks = {f"I{week.replace('-', '')}" for week in record["weeks_not_built"]}
    return [line for line in lines if line in named or line.split("/")[0] in weeks]


def hand_scores(export: Path, lists: Path, images: Path, split: str) -> tuple[float, float, float]:
    """The split's numbers from the export's own encoder and the preset's eval transform on the present images."""
    from designclip.pipeline.embed.encoder import EncoderSpec, load_encoder
    from designclip.pipeline.evaluate.lists import sheet_input

    encoder, prepare, _ = sheet_input(load_encoder(EncoderSpec(str(export)), device="cpu"), 512, 0.03)
    sides = []
    for name in (f"{split}_query_patent.txt", f"{split}_db_patent.txt"):
        present = [line for line in list_lines(lists / name) if (images / line).is_file()]
        vectors = unit(encoder.encode_images([prepare((images / line).read_bytes()) for line in present]))
        sides.append((vectors, [Path(line).name.split("-")[0] for line in present]))
    (q, qp), (db, dbp) = sides
    return official_and_pml(q, db, qp, dbp)


def merged_lists(build: Path, out: Path) -> Path:
    """A lists folder whose test split is the rebuild's test + val lines: two patents, so the ranking can be wrong."""
    out.mkdir()
    for side in ("query", "db"):
        text = "".join((build / "lists" / f"{s}_{side}_patent.txt").read_text() for s in ("test", "val"))
        (out / f"test_{side}_patent.txt").write_text(text)
    return out


def assert_report_matches_hand(report: dict, export: Path, lists: Path, images: Path) -> None:
    """Both mAPs and P@1 of the report's test split equal the hand computation."""
    test = report["deeppatent_benchmark"]["splits"]["test"]
    official, pml, top1 = hand_scores(export, lists, images, "test")
    assert test["mAP"] == pytest.approx(official, abs=1e-6)
    assert test["mAP_pml"] == pytest.approx(pml, abs=1e-6)
    assert test["p_at_1"] == pytest.approx(top1, abs=1e-6)


def test_build_train_evaluate_with_missing_images_and_overlap(tmp_path: Path, prefect_harness, capsys) -> None:
    root = ingested_deeppatent_weeks(tmp_path).root
    build = Path(root) / "deeppatent" / "deeppatent"
    assert cli(root, "render", "--start", "2018-01-01", "--end", "2019-06-30") == 0  # for the per-FIG. variant
    assert cli(root, "deeppatent", "build", "--lists", str(LISTS)) == 0
    assert cli(root, "train", "--deeppatent", str(build), "--run", "tiny", *TINY_TRAIN, "--steps", "8") == 0
    export = Path(root) / "models" / "tiny"
    assert (export / "trained_patents.txt").read_text().split() == ["USD0810415-20180220",
                                                                   "USD0834583-20181127"]
    losses = [json.loads(line)["loss"] for line in (Path(root) / "runs" / "tiny" / "metrics.jsonl").read_text()
              .splitlines()]
    assert len(losses) == 8 and np.isfinite(losses).all()
    capsys.readouterr()

    # strict by default: the rebuild lacks 9 listed test sheets, named with the way on
    assert cli(root, *evaluate_args(build, "tiny")) == 1
    error = capsys.readouterr().err
    assert "9 of 18 listed DeepPatent images are missing" in error and "USD0834581-20181127-D00009.png" in error
    assert "--skip-missing-images" in error and "missing.json" in error
    assert not (Path(root) / "reports").exists()

    assert cli(root, *evaluate_args(build, "tiny"), "--skip-missing-images") == 0
    report_dir = Path(root) / "reports" / "@deeppatent" / "tiny"
    report = json.loads((report_dir / "report.json").read_text())
    for split in ("test", "val"):
        part = report["deeppatent_benchmark"]["splits"][split]
        lines = [line for side in ("query", "db")
                 for line in list_lines(build / "lists" / f"{split}_{side}_patent.txt")]
        gone = missing_by_build(build, lines)
        assert (part["missing_images"], part["listed_images"]) == (len(gone), len(lines))
        assert part["missing_examples"] == gone[:10] and part["queries"] + part["database"] == len(lines) - len(gone)
    assert report["deeppatent_benchmark"]["splits"]["test"]["missing_images"] == 9
    assert report["overlap"]["count"] == 0
    published = {(r["label"].split(" (")[0], r["map_official"], r["map_pml"], r["p_at_1"])
                 for r in report["deeppatent_benchmark"]["published"]}
    assert published == {("PatentNet", 0.376, None, None), ("SwinV2 + ArcFace", None, 0.839, 0.922)}
    markdown = (report_dir / "report.md").read_text()
    assert "- test: 9 of 18 listed images missing (skipped; see missing_examples in report.json)" in markdown
    assert "- val:" not in markdown
    assert_report_matches_hand(report, export, build / "lists", build / "images")
    # the per-FIG. variant beside it: the listed patents' rendered views, through the preset's eval transform
    views = report["deeppatent_benchmark"]["per_view"]
    view_lines = {side: list_lines(build / "views" / "lists" / f"test_{side}_view.txt") for side in ("query", "db")}
    assert (views["test"]["queries"], views["test"]["database"]) == (1, len(view_lines["db"])) and view_lines["db"]
    assert views["test"]["preprocessing"] == "view through eval_transform('higuchi')"
    assert views["test"]["missing_patents"] == 1  # USD0807264: its week was never ingested
    assert f"| per-FIG. views | test | 1 | {len(view_lines['db'])} |" in markdown
    for picture in ("deeppatent_sheets.png", "deeppatent_views.png"):  # the rankings to look at, linked
        assert (report_dir / picture).stat().st_size > 0 and f"![{picture}]({picture})" in markdown

    # one patent per split makes every ranking right: score two patents together, where it can be wrong
    merged = merged_lists(build, tmp_path / "merged")
    assert cli(root, *evaluate_args(build, "tiny", merged), "--skip-missing-images") == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["deeppatent_benchmark"]["splits"]["test"]["patents"] == 2
    assert_report_matches_hand(report, export, merged, build / "images")

    # a model trained on a listed (test) sheet is refused unless the overlap is allowed
    tampered = tmp_path / "tampered"
    shutil.copytree(build, tampered)
    query = list_lines(build / "lists" / "test_query_patent.txt")[0]
    with (tampered / "lists" / "train_patent_trn.txt").open("a") as handle:
        handle.write(f"{query} 1\n")
    assert cli(root, "train", "--deeppatent", str(tampered), "--run", "leaky", *TINY_TRAIN, "--steps", "2") == 0
    capsys.readouterr()
    assert cli(root, *evaluate_args(build, "leaky"), "--skip-missing-images") == 1
    assert "overlap" in capsys.readouterr().err.lower()
    assert cli(root, *evaluate_args(build, "leaky"), "--skip-missing-images", "--allow-deeppatent-overlap") == 0
    leaky = json.loads((Path(root) / "reports" / "@deeppatent" / "leaky" / "report.json").read_text())
    assert leaky["overlap"]["count"] == 1 and leaky["overlap"]["examples"] == ["USD0834581"]
