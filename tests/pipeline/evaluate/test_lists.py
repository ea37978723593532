"""The real DeepPatent list path: lists of drawings scored by patent id, unreadable images as an error, and every
sheet cut and squared exactly as a training view."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.evaluate.deeppatent import sheet_view
from designclip.pipeline.evaluate.evaluation import EvaluationError
from designclip.pipeline.evaluate.lists import encode_sheets, evaluate_deeppatent_lists
from designclip.pipeline.evaluate.report import benchmark_lines
from designclip.pipeline.train.data import decode_image
from PIL import Image, ImageDraw

from tests.conftest import patent_folder
from tests.fixtures.evaluate import drawing, write_lists


def test_real_deeppatent_lists_score_by_patent_id(tmp_path: Path, tiny_encoder) -> None:
    images = tmp_path / "images"
    names = {}
    for patent, shape, count in (("USD0000001", "circle", 2), ("USD0000002", "box", 2), ("USD0000003", "cross", 1)):
        for i in range(1, count + 1):
            rel = f"I20200101/{patent}-20200101/{patent}-20200101-D{i:05d}.png"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            drawing(shape).save(images / rel)
            names[(patent, i)] = rel
    q, db = write_lists(tmp_path, [names[("USD0000001", 1)], names[("USD0000002", 1)]],
                        [names[("USD0000003", 1)], names[("USD0000001", 2)], names[("USD0000002", 2)]])
    metrics, top = evaluate_deeppatent_lists(tiny_encoder, q, db, images, batch_size=2)
    assert (metrics["queries"], metrics["database"], metrics["patents"]) == (2, 3, 3)
    assert metrics["mAP"] == 1.0 and metrics["top_k"]["1"] == 1.0  # the same drawing is the nearest neighbour
    assert top.shape == (2, 10) and top[:, 0].tolist() == [1, 2] and (top[:, 3:] == -1).all()


def test_missing_and_broken_list_images_are_an_error_not_a_silent_drop(tmp_path: Path, tiny_encoder) -> None:
    images = tmp_path / "images"
    images.mkdir()
    drawing("box").save(images / "USD0000001-20200101-D00001.png")
    (images / "USD0000001-20200101-D00002.png").write_bytes(b"not a png")
    missing = [f"USD000000{i}-20200101-D00001.png" for i in range(2, 9)]
    q, db = write_lists(tmp_path, ["USD0000001-20200101-D00001.png"], ["USD0000001-20200101-D00002.png", *missing])
    with pytest.raises(EvaluationError, match=r"7 of 9 listed DeepPatent images are missing under") as err:
        evaluate_deeppatent_lists(tiny_encoder, q, db, images)
    text = str(err.value)
    assert "USD0000002-20200101-D00001.png" in text and "USD0000006-20200101-D00001.png" in text
    assert "USD0000007-20200101-D00001.png" not in text and "and 2 more" in text  # the first five, then a count
    assert "pass --skip-missing-images" in text.lower() and "missing.json" in text
    q, db = write_lists(tmp_path, ["USD0000001-20200101-D00001.png"], ["USD0000001-20200101-D00002.png"])
    for skip in (False, True):  # an undecodable image is another problem: an error even when skipping missing ones
        with pytest.raises(EvaluationError, match=r"(?s)1 DeepPatent images \(of 2\) could not be read.*D00002.png"):
            evaluate_deeppatent_lists(tiny_encoder, q, db, images, skip_missing=skip)


SHAPES = ("circle", "box", "cross")


def sheet_set(images: Path) -> dict[tuple[int, int], str]:
    """Four patents x three sheets (mixed shapes, so the ranking is imperfect) -> {(patent, sheet): relative path}."""
    names = {}
    for p in range(1, 5):
        for s in range(1, 4):
            rel = f"I20200101/USD000000{p}-20200101/USD000000{p}-20200101-D{s:05d}.png"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            drawing(SHAPES[(p + s * (p % 2)) % 3]).save(images / rel)
            names[(p, s)] = rel
    return names


def test_skip_missing_scores_the_present_lines_exactly_as_lists_without_the_missing(tmp_path: Path,
                                                                                     tiny_encoder) -> None:
    images = tmp_path / "images"
    names = sheet_set(images)
    queries = [names[(p, 1)] for p in range(1, 5)]
    database = [names[(p, s)] for p in range(1, 5) for s in (2, 3)]
    gone = [names[(3, 1)], names[(2, 3)], names[(4, 2)]]  # one query, two database sheets
    for rel in gone:
        (images / rel).unlink()
    (tmp_path / "all").mkdir()
    q, db = write_lists(tmp_path / "all", queries, database)
    with pytest.raises(EvaluationError, match="3 of 12 listed"):
        evaluate_deeppatent_lists(tiny_encoder, q, db, images)
    metrics, top = evaluate_deeppatent_lists(tiny_encoder, q, db, images, batch_size=3, skip_missing=True)
    assert (metrics["listed_images"], metrics["missing_images"]) == (12, 3)
    assert metrics["missing_examples"] == gone and (metrics["queries"], metrics["database"]) == (3, 6)
    (tmp_path / "clean").mkdir()
    q2, db2 = write_lists(tmp_path / "clean", [x for x in queries if x not in gone],
                          [x for x in database if x not in gone])
    clean, clean_top = evaluate_deeppatent_lists(tiny_encoder, q2, db2, images, batch_size=3)
    assert 0 < clean["mAP"] < 1 and clean["missing_images"] == 0 and clean["missing_examples"] == []
    for key in ("mAP", "mAP_pml", "top_k", "queries", "database", "patents", "skipped_queries"):
        assert metrics[key] == clean[key], key
    # the DIRA top-10 keeps the lists' own numbering: the missing query's row is empty, hits index the full db list
    db_keep = np.array([i for i, x in enumerate(database) if x not in gone])
    assert top.shape == (4, 10) and (top[2] == -1).all()
    present = clean_top[:, :6]
    np.testing.assert_array_equal(top[[0, 1, 3], :6], db_keep[present])
    assert (top[:, 6:] == -1).all()


def test_skip_missing_when_nothing_is_there_says_where_to_point(tmp_path: Path, tiny_encoder) -> None:
    images = tmp_path / "images"
    images.mkdir()
    q, db = write_lists(tmp_path, ["USD0000001-20200101-D00001.png"], ["USD0000001-20200101-D00002.png"])
    with pytest.raises(EvaluationError, match="none of the listed queries .* point --deeppatent-images"):
        evaluate_deeppatent_lists(tiny_encoder, q, db, images, skip_missing=True)


def test_report_names_the_missing_count_per_split() -> None:
    split = {"queries": 3, "database": 6, "mAP": 0.5, "mAP_pml": 0.5, "top_k": {"1": 0.5}}
    bench = {"lists_dir": "L", "image_root": "I",
             "splits": {"test": {**split, "listed_images": 13, "missing_images": 2, "missing_examples": ["a"]},
                        "val": {**split, "listed_images": 9, "missing_images": 0, "missing_examples": []}}}
    text = "\n".join(benchmark_lines(bench))
    assert "- test: 2 of 13 listed images missing (skipped; see missing_examples in report.json)" in text
    assert "val:" not in text and "listed images missing" not in "\n".join(benchmark_lines({**bench, "splits": {
        "val": bench["splits"]["val"]}}))


def portrait_sheet() -> bytes:
    """A 1000 x 1400 sheet with drawing lines near its top and bottom edges (where a centre crop cuts)."""
    sheet = Image.new("L", (1000, 1400), 255)
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((300, 40, 700, 1360), outline=0, width=24)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def test_sheets_are_cut_and_squared_like_training_views(tiny_encoder, tmp_path: Path) -> None:
    view = np.asarray(sheet_view(portrait_sheet(), size=512).convert("L"))
    rows = np.flatnonzero((view < 128).any(axis=1))
    assert view.shape == (512, 512) and rows[0] < 30 and rows[-1] > 482  # the whole drawing, with a 3 % margin
    raw = tiny_encoder.transform(decode_image(portrait_sheet()))[0].numpy()  # resize + centre crop of the sheet
    cut = tiny_encoder.transform(sheet_view(portrait_sheet(), 512))[0].numpy()
    edges = lambda t: int(((t < (t.max() + t.min()) / 2).sum(axis=1) > 8).sum())  # noqa: E731 rows of a long dark run
    assert edges(raw) == 0 and edges(cut) >= 2  # the centre crop lost the top and bottom edges; the square kept both
    # a real sample sheet (TIFF -> PNG, as DeepPatent stores them) goes through the same path
    tif = patent_folder("USD0907292") / "USD0907292-20210105-D00001.TIF"
    png = io.BytesIO()
    Image.open(tif).convert("L").save(png, format="PNG")
    (tmp_path / "real.png").write_bytes(png.getvalue())
    (tmp_path / "portrait.png").write_bytes(portrait_sheet())
    files = [str(tmp_path / "real.png"), str(tmp_path / "portrait.png")]
    vectors, bad = encode_sheets(tiny_encoder, files, batch_size=2, size=512, margin=0.03)
    assert bad == []
    expected = tiny_encoder.encode_images([sheet_view(Path(f).read_bytes(), 512) for f in files])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert not np.allclose(vectors[1], tiny_encoder.encode_images([decode_image(portrait_sheet())])[0], atol=1e-3)
