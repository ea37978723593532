"""The ranking picture: chosen queries in rows, their first hits framed green (same patent) or red (another)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from designclip.pipeline.evaluate.ranking_sheet import CELL, ranking_picture, ranking_pictures
from PIL import Image

from tests.pipeline.evaluate.test_benchmark import fixture_benchmark

GREEN, RED, BLUE = (0, 128, 0), (255, 0, 0), (0, 0, 255)


def frame(picture: bytes, row: int, column: int) -> tuple[int, int, int]:
    """The frame colour of one cell (contact_sheet's geometry: a 22 px title, cells of CELL + 16 px)."""
    image = Image.open(io.BytesIO(picture)).convert("RGB")
    return image.getpixel((column * CELL + 2, 22 + row * (CELL + 16) + 2))


def test_hits_are_framed_by_whether_they_are_of_the_query_patent(tmp_path: Path) -> None:
    lists, images, _ = fixture_benchmark(tmp_path)
    metrics = {"query_list": str(lists / "test_query_patent.txt"), "db_list": str(lists / "test_db_patent.txt"),
               "image_root": str(images)}
    db = [line.split()[0] for line in (lists / "test_db_patent.txt").read_text().splitlines()]
    a = [i for i, rel in enumerate(db) if rel.split("/")[1] == db[0].split("/")[1]]  # the first query's patent
    other = [i for i in range(len(db)) if i not in a]
    top = np.full((2, 10), -1, dtype=np.int64)
    top[0, :3] = [other[0], a[0], other[1]]  # query 0: wrong, right, wrong
    # query 1 ranked nothing (-1 row, e.g. its image was missing): left out of the picture
    picture = ranking_picture(metrics, top, "test", hits=3)
    assert Image.open(io.BytesIO(picture)).size == (4 * CELL, 22 + 1 * (CELL + 16)), "one ranked query, 3 hits"
    assert [frame(picture, 0, c) for c in range(4)] == [BLUE, RED, GREEN, RED]
    assert ranking_picture(metrics, np.full((2, 10), -1), "none") is None


def test_pictures_are_named_per_variant_and_skip_what_was_not_scored(tmp_path: Path) -> None:
    lists, images, _ = fixture_benchmark(tmp_path)
    metrics = {"query_list": str(lists / "test_query_patent.txt"), "db_list": str(lists / "test_db_patent.txt"),
               "image_root": str(images)}
    top = np.tile(np.arange(10), (2, 1))
    bench = {"splits": {"test": metrics}, "per_view": {"test": {"skipped": "no views"}}}
    assert set(ranking_pictures(bench, {"test": top}, "m")) == {"deeppatent_sheets.png"}
    bench["per_view"] = {"test": metrics}
    assert set(ranking_pictures(bench, {"test": top, "views_test": top}, "m")) == {"deeppatent_sheets.png",
                                                                                 "deeppatent_views.png"}
