"""The per-FIG. variant scored from a rebuild's rendered views: numbers equal a hand computation on the same views,
the build's counts travel with them, and lists without views (or weeks not rendered) say so instead of scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.deeppatent.driver import DeepPatentOptions
from designclip.pipeline.deeppatent.outputs import build
from designclip.pipeline.deeppatent.views import VIEWS_PROTOCOL
from designclip.pipeline.evaluate.per_view import per_view_variant, views_folder
from designclip.pipeline.render.driver import RENDER
from designclip.pipeline.train.data import decode_image

from tests.fixtures.deeppatent import (
    LISTS,
    TEST_WEEK,
    VAL_WEEK,
    ingested_deeppatent_weeks,
    official_and_pml,
    unit,
)

# Four patents of the two fixture weeks in one test split: two query patents, all four in the database
TEST_QUERY = ("I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png 1\n"
              "I20180220/USD0810412-20180220/USD0810412-20180220-D00005.png 2\n")
TEST_DB = ("I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1\n"
           "I20180220/USD0810412-20180220/USD0810412-20180220-D00002.png 2\n"
           "I20181127/USD0834583-20181127/USD0834583-20181127-D00001.png 3\n"
           "I20180220/USD0810415-20180220/USD0810415-20180220-D00001.png 4\n")


def four_patent_lists(out: Path) -> Path:
    out.mkdir()
    (out / "test_query_patent.txt").write_text(TEST_QUERY)
    (out / "test_db_patent.txt").write_text(TEST_DB)
    return out


def hand(encoder, folder: Path, split: str) -> tuple[float, float, float, int, int]:
    """(official mAP, PML mAP, P@1, queries, database) of the split's view lists, encoded here view by view."""
    sides = []
    for side in ("query", "db"):
        paths = [line.split()[0] for line in (folder / "lists" / f"{split}_{side}_view.txt").read_text().splitlines()]
        vectors = unit(encoder.encode_images([decode_image((folder / "images" / p).read_bytes()) for p in paths]))
        sides.append((vectors, [Path(p).name.split("-")[0] for p in paths]))
    (q, qp), (db, dbp) = sides
    return (*official_and_pml(q, db, qp, dbp), len(qp), len(dbp))


def test_views_of_a_rebuild_are_scored_like_the_hand_computation(tmp_path: Path, tiny_encoder) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    for week in (VAL_WEEK, TEST_WEEK):
        RENDER.run(folder, week)
    build(folder, DeepPatentOptions(str(four_patent_lists(tmp_path / "lists"))))
    rebuild = Path(folder.root) / "deeppatent" / "deeppatent"
    out, tops = per_view_variant(tiny_encoder, rebuild / "lists", batch_size=4)
    assert set(out) == set(tops) == {"test"}, "only the splits whose lists are there"
    assert tops["test"].shape == (2, 10)
    test = out["test"]
    official, pml, top1, queries, database = hand(tiny_encoder, rebuild / "views", "test")
    assert (test["queries"], test["database"]) == (queries, database) and queries == 2 and database > 4
    assert test["mAP"] == pytest.approx(official, abs=1e-6) and test["mAP_pml"] == pytest.approx(pml, abs=1e-6)
    assert test["p_at_1"] == pytest.approx(top1, abs=1e-6)
    assert 0.0 < test["mAP"] < 1.0, "four patents' views: a ranking that can be wrong"
    assert (test["listed_patents"], test["patents_with_views"], test["missing_patents"]) == (4, 4, 0)
    assert test["protocol"] == VIEWS_PROTOCOL and test["preprocessing"].startswith("the rendered view as it is")
    assert np.isfinite([test["mAP"], test["mAP_pml"]]).all()


def test_lists_without_views_give_nothing_and_unrendered_weeks_are_said(tmp_path: Path, tiny_encoder) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(LISTS, plain)
    assert views_folder(plain) is None and per_view_variant(tiny_encoder, plain) == ({}, {})
    folder = ingested_deeppatent_weeks(tmp_path)
    build(folder, DeepPatentOptions(str(LISTS)))  # nothing rendered: the view lists are empty
    out, tops = per_view_variant(tiny_encoder, Path(folder.root) / "deeppatent" / "deeppatent" / "lists")
    assert set(out) == {"test", "val"} and tops == {}
    assert "render the lists' weeks" in out["test"]["skipped"] and out["test"]["weeks_not_rendered"] == 2


def test_an_evaluation_input_record_changes_with_the_view_lists(tmp_path: Path) -> None:
    from designclip.pipeline.evaluate.inputs import lists_record

    folder = ingested_deeppatent_weeks(tmp_path)
    build(folder, DeepPatentOptions(str(LISTS)))
    rebuild = Path(folder.root) / "deeppatent" / "deeppatent"
    lists = {"lists_dir": str(rebuild / "lists"), "image_root": str(rebuild / "images")}
    before = lists_record(lists)
    assert before["views_test_query_view.txt"]["size"] == 0
    for week in (VAL_WEEK, TEST_WEEK):  # rendered, built again: the view lists fill, so a report is made again
        RENDER.run(folder, week)
    build(folder, DeepPatentOptions(str(LISTS)))
    after = lists_record(lists)
    assert after["views_test_query_view.txt"]["size"] > 0 and after != before
