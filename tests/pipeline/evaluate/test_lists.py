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
    with pytest.raises(EvaluationError, match=r"7 DeepPatent images .*could not be read") as err:
        evaluate_deeppatent_lists(tiny_encoder, q, db, images)
    assert "USD0000002-20200101-D00001.png" in str(err.value) and "and 2 more" in str(err.value)
    q, db = write_lists(tmp_path, ["USD0000001-20200101-D00001.png"], ["USD0000001-20200101-D00002.png"])
    with pytest.raises(EvaluationError, match=r"(?s)1 DeepPatent images \(of 2\) could not be read.*D00002.png"):
        evaluate_deeppatent_lists(tiny_encoder, q, db, images)


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
