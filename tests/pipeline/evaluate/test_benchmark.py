"""DeepPatent's benchmark folder: both mAP definitions against a hand computation, test + val lists of real fixture
sheets scored end to end with the published rows beside them, the preset preprocessing, and the overlap check."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.evaluate.benchmark import (
    benchmark_lists,
    benchmark_patents,
    score_benchmark,
)
from designclip.pipeline.evaluate.deeppatent import deeppatent_eval_by_patent, map_at_max_bin_count
from designclip.pipeline.evaluate.evaluation import EvaluationError
from designclip.pipeline.evaluate.report import report_markdown
from designclip.pipeline.render.sheet_image import decode_sheet
from PIL import Image

from tests.conftest import patent_folder

# Toy ranking. Database: d0 A, d1 C, d2 A, d3 B, d4 A. Scores (inner products of unit vectors):
#   q0 (patent A): d0 .40, d1 .45, d2 .15, d3 .25, d4 .05 -> ranking d1(C) d0(A) d3(B) d2(A) d4(A): A hits at 2, 4, 5
#   q1 (patent B): d0 .05, d1 .45, d2 .15, d3 .40, d4 .10 -> ranking d1(C) d3(B) d2 d4 d0: B hit at 2
#   q2 (patent D): no database image of D -> left out of both means
Q_SCORES = np.array([[0.40, 0.45, 0.15, 0.25, 0.05], [0.05, 0.45, 0.15, 0.40, 0.10]])
DB_PATENTS = ["A", "C", "A", "B", "A"]
# official AP (full ranking, / relevant): q0 = (1/2 + 2/4 + 3/5) / 3 = 1.6 / 3 = 0.533333; q1 = (1/2) / 1 = 0.5
#   mAP official = (0.533333 + 0.5) / 2 = 0.516667
OFFICIAL = (1.6 / 3 + 0.5) / 2
# PML (k = max_bin_count = 3, A's database count; precision at each hit in the top 3, / relevant):
#   q0 top 3 = d1 d0 d3: one hit at rank 2 -> (1/2) / 3 = 0.166667; q1 top 3 = d1 d3 d2: hit at 2 -> (1/2) / 1 = 0.5
#   mAP pml = (0.166667 + 0.5) / 2 = 0.333333
PML = (0.5 / 3 + 0.5) / 2


def toy_vectors() -> tuple[np.ndarray, np.ndarray]:
    """Unit query vectors e0, e1 (and e0 for q2); database rows with those inner products plus an own direction."""
    dim = 2 + len(DB_PATENTS)
    queries = np.eye(dim, dtype=np.float64)[[0, 1, 0]]
    db = np.zeros((len(DB_PATENTS), dim))
    db[:, 0], db[:, 1] = Q_SCORES[0], Q_SCORES[1]
    db[np.arange(len(DB_PATENTS)), 2 + np.arange(len(DB_PATENTS))] = np.sqrt(1 - (Q_SCORES ** 2).sum(axis=0))
    return queries, db


def test_both_map_definitions_match_the_hand_computation_on_a_toy_ranking() -> None:
    queries, db = toy_vectors()
    np.testing.assert_allclose(queries[:2] @ db.T, Q_SCORES, atol=1e-12)  # the ranking the comment describes
    result = deeppatent_eval_by_patent(queries, db, ["A", "B", "D"], DB_PATENTS, ks=(1, 2, 5))
    assert (result["evaluated"], result["skipped"]) == (2, 1)
    assert result["mAP"] == pytest.approx(OFFICIAL, abs=1e-6)
    np.testing.assert_allclose(result["per_query_ap"][:2], [1.6 / 3, 0.5], atol=1e-6)
    assert result["top_k"] == {1: 0.0, 2: 1.0, 5: 1.0}  # C outranks both first hits: P@1 = 0
    assert map_at_max_bin_count(queries, db, ["A", "B", "D"], DB_PATENTS) == pytest.approx(PML, abs=1e-6)


SHEET_PATENTS = ("USD0907292", "USD0907293", "USD0909824")


def fixture_benchmark(root: Path, patents: tuple[str, str, str] = SHEET_PATENTS
                      ) -> tuple[Path, Path, dict[str, list[str]]]:
    """Real fixture sheets as DeepPatent PNGs under their listed names; test and val lists over them."""
    images, lists = root / "images", root / "lists"
    sheets: dict[str, list[str]] = {}
    for prefix in patents:
        folder = patent_folder(prefix)
        for tif in sorted(folder.glob("*-D0000[1-3].TIF")):
            stem = tif.stem  # USD0907292-20210105-D00001
            rel = f"I{stem.split('-')[1]}/{folder.name}/{stem}.png"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            decode_sheet(tif.read_bytes(), None).save(images / rel)
            sheets.setdefault(prefix, []).append(rel)
    lists.mkdir()
    a, b, c = (sheets[p] for p in patents)

    def write(name: str, rows: list[str]) -> None:
        (lists / name).write_text("".join(f"{r} {i}\n" for i, r in enumerate(rows, start=1)))

    # every query sheet is also in the database (a copy of itself): its nearest neighbour is its own patent
    write("test_query_patent.txt", [a[0], b[0]])
    write("test_db_patent.txt", [a[0], *a[1:], b[0], *b[1:], *c])
    write("val_query_patent.txt", [c[0]])
    write("val_db_patent.txt", [*a, c[0], *c[1:]])
    return lists, images, sheets


def test_a_benchmark_folder_is_scored_per_split_beside_the_published_rows(tmp_path: Path, tiny_encoder) -> None:
    lists, images, sheets = fixture_benchmark(tmp_path)
    assert set(benchmark_lists(tmp_path)) == {"test", "val"}  # the build folder itself is accepted (DIR/lists)
    bench, tops = score_benchmark(tiny_encoder, lists, images, batch_size=4)
    test, val = bench["splits"]["test"], bench["splits"]["val"]
    assert (test["queries"], test["database"], test["patents"]) == (2, 9, 3)
    assert (val["queries"], val["database"], val["patents"]) == (1, 6, 2)
    for part in (test, val):
        assert part["p_at_1"] == part["top_k"]["1"] == 1.0  # the query's own copy ranks first
        assert 0.0 < part["mAP"] <= 1.0 and 0.0 < part["mAP_pml"] <= 1.0
        assert part["preprocessing"].startswith("sheet cut to its ink box")  # no preset: today's view preprocessing
    assert tops["test"].shape == (2, 10) and tops["val"].shape == (1, 10)
    assert [r["map_official"] for r in bench["published"]] == [0.376, None]
    assert [(r["map_pml"], r["p_at_1"]) for r in bench["published"]] == [(None, None), (0.839, 0.922)]
    markdown = report_markdown({"model": {"tag": "tiny"}, "deeppatent_benchmark": bench})
    assert "| tiny | sheets | test | 2 | 9 |" in markdown and "| tiny | sheets | val | 1 | 6 |" in markdown
    assert ("| PatentNet (Kucer et al., WACV 2022) (published, not measured here) | sheets | test | – | – | 37.60 | – "
            "|") in markdown
    assert "(published, not measured here) | sheets | test | – | – | – | 83.90 | 92.20 |" in markdown
    assert benchmark_patents(lists) == {"USD0907292", "USD0907293", "USD0909824"}


def test_val_is_optional_but_half_a_split_or_no_test_is_an_error(tmp_path: Path) -> None:
    lists, _, _ = fixture_benchmark(tmp_path)
    (lists / "val_db_patent.txt").unlink()
    with pytest.raises(EvaluationError, match="val needs both .* missing val_db_patent.txt"):
        benchmark_lists(lists)
    (lists / "val_query_patent.txt").unlink()
    assert set(benchmark_lists(lists)) == {"test"}
    shutil.rmtree(lists)
    with pytest.raises(EvaluationError, match="no test_query_patent.txt"):
        benchmark_lists(tmp_path)


def test_a_preset_model_gets_whole_sheets_through_its_training_eval_transform(tmp_path: Path, tiny_encoder,
                                                                              monkeypatch) -> None:
    import copy

    lists, images, _ = fixture_benchmark(tmp_path)
    seen: list[tuple[str, tuple[int, int]]] = []
    base = tiny_encoder.transform

    def eval_transform(preset: str):
        def apply(image):
            seen.append((preset, image.size))
            return base(image.convert("RGB"))
        return apply

    fake = types.ModuleType("designclip.pipeline.train.sheet_transforms")
    fake.eval_transform = eval_transform  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "designclip.pipeline.train.sheet_transforms", fake)
    preset_encoder = copy.copy(tiny_encoder)
    preset_encoder.info = {**tiny_encoder.info, "preprocess": {"preset": "higuchi"}}
    bench, _ = score_benchmark(preset_encoder, lists, images, batch_size=4)
    assert bench["splits"]["test"]["preprocessing"] == "whole sheet through eval_transform('higuchi')"
    assert len(seen) == 2 + 9 + 1 + 6 and {p for p, _ in seen} == {"higuchi"}
    on_disk = {Image.open(png).size for png in images.rglob("*.png")}
    assert {size for _, size in seen} == on_disk and (512, 512) not in on_disk  # whole sheets, not squared views
    assert tiny_encoder.transform is base  # the shared encoder keeps its own transform


def test_evaluate_scores_a_benchmark_folder_and_refuses_a_model_trained_on_its_patents(
        embedded_v1: dict, tmp_path: Path) -> None:
    from designclip.pipeline.evaluate.driver import evaluate_model
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_design_clip
    from designclip.pipeline.train.model_configs import tiny_model_config
    from designclip.storage import layout
    from designclip.storage.embeddings import load_split_vectors
    from designclip.storage.eval_inputs import split_patents
    from designclip.storage.folder import DataFolder
    from designclip.storage.reports import read_report_file

    src, tag = Path(embedded_v1["data_root"]), embedded_v1["tag"]
    root = tmp_path / "data"
    for rel in (layout.release_dir("v1"), layout.embed_dir("v1", tag)):
        shutil.copytree(src / rel, root / rel)
    test_split = load_split_vectors(DataFolder(root), "v1", tag, "test")
    ids = test_split.meta.column("patent_id").to_pylist()
    readable = [p for p, ok in zip(ids, test_split.image_ok, strict=True) if ok]
    in_test = sorted(p for p in set(readable) if len(list(patent_folder(p).glob("*-D0000[1-3].TIF"))) >= 2)
    listed = (*in_test[:2], *[p for p in SHEET_PATENTS if p not in in_test])[:3]
    assert len(in_test) >= 2 and len(listed) == 3
    lists, images, _ = fixture_benchmark(tmp_path / "bench", listed)  # test lists: listed[0], [1]; val: [2]
    bench = {"lists_dir": str(lists), "image_root": str(images)}
    out = evaluate_model(str(root), "v1", _spec(embedded_v1["model"]), pairs_5k=50, deeppatent_lists=bench)
    report = out["report"]
    assert set(report["deeppatent_benchmark"]["splits"]) == {"test", "val"}
    assert report["deeppatent"]["scored_on"] == "DeepPatent test lists"
    assert report["deeppatent"]["map_official"] == report["deeppatent_benchmark"]["splits"]["test"]["mAP"]
    assert report["deeppatent"]["map_pml"] == report["deeppatent_benchmark"]["splits"]["test"]["mAP_pml"]
    assert report["deeppatent"]["p_at_1"] == 1.0
    assert report["deeppatent_benchmark"]["per_view"] == {}, "DeepPatent's own lists have no views/ beside them"
    markdown = read_report_file(DataFolder(root), "v1", tag, "report.md").decode()
    print("\n" + markdown[markdown.index("### DeepPatent benchmark"):])
    assert "### DeepPatent benchmark (sheets and per-FIG. views)" in markdown and "| 83.90 | 92.20 |" in markdown
    assert evaluate_model(str(root), "v1", _spec(embedded_v1["model"]), pairs_5k=50,
                          deeppatent_lists=bench)["skipped"]  # same lists, same report
    # a model trained on release v1, scored on lists naming v1 training patents: refused unless allowed
    trained = sorted(split_patents(DataFolder(root), "v1", ("train", "val")))
    with_sheets = [p for p in trained if len(list(patent_folder(p).glob("*-D0000[1-3].TIF"))) >= 2]
    seen = fixture_benchmark(tmp_path / "seen", (with_sheets[0], *SHEET_PATENTS[1:]))[:2]
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, _, _ = build_design_clip("designclip-tiny", model_config=tiny_model_config())
    trained_on_v1 = export_model(model, tmp_path / "models" / "on-v1", "designclip-tiny",
                                 {"run": "on-v1", "release": {"version": "v1"}})
    seen_lists = {"lists_dir": str(seen[0]), "image_root": str(seen[1])}
    with pytest.raises(EvaluationError, match=r"holds 1 of the 3 patents of the DeepPatent benchmark lists"):
        evaluate_model(str(root), "v1", _spec(str(trained_on_v1)), pairs_5k=50, deeppatent_lists=seen_lists)
    allowed = evaluate_model(str(root), "v1", _spec(str(trained_on_v1)), pairs_5k=50, deeppatent_lists=seen_lists,
                             allow_deeppatent_overlap=True)["report"]
    assert allowed["deeppatent"]["overlap_patents"] == 1 and "deeppatent_benchmark" in allowed


def _spec(model: str):
    from designclip.pipeline.embed.encoder import EncoderSpec

    return EncoderSpec(model)


def test_a_recorded_sheet_preset_goes_through_the_real_sheet_transforms(tmp_path: Path, tiny_encoder) -> None:
    import copy

    import torch
    from designclip.pipeline.evaluate.lists import encode_sheets
    from designclip.pipeline.train.sheet_transforms import HIGUCHI_SHEETS, eval_transform

    lists, images, sheets = fixture_benchmark(tmp_path)
    size = int(tiny_encoder.info["preprocess"]["input_size"])
    preset = {"name": "higuchi", **HIGUCHI_SHEETS.record(), "image_size": size, "channels": 3}  # as an export records
    preset_encoder = copy.copy(tiny_encoder)
    preset_encoder.info = {**tiny_encoder.info, "preprocess": {"preset": preset}}
    files = [str(images / rel) for rel in sheets[SHEET_PATENTS[0]]]
    vectors, bad = encode_sheets(preset_encoder, files, batch_size=2, size=512, margin=0.03)
    transform = eval_transform(preset)  # binarise at 120, crop to the drawing, resize + centre crop
    batch = torch.stack([transform(decode_sheet(Path(f).read_bytes(), None)) for f in files])
    with torch.inference_mode():
        expected = tiny_encoder.model.encode_image(batch)
    expected = (expected / expected.norm(dim=-1, keepdim=True)).numpy()
    assert bad == [] and np.allclose(vectors, expected, atol=1e-5)
    squared, _ = encode_sheets(tiny_encoder, files, batch_size=2, size=512, margin=0.03)
    assert not np.allclose(vectors, squared, atol=1e-3)  # not today's squared-view preprocessing
    bench, _ = score_benchmark(preset_encoder, lists, images, batch_size=4)
    assert bench["splits"]["val"]["preprocessing"] == "whole sheet through eval_transform('higuchi')"
