"""DeepPatent protocol: the query/database split, mAP and top-k by hand, the real list format, DIRA result.npy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.evaluate import deeppatent as eval_deeppatent
from designclip.pipeline.evaluate.deeppatent import (
    deeppatent_eval,
    deeppatent_eval_by_patent,
    deeppatent_split,
    map_at_max_bin_count,
    patent_id_from_file,
    read_deeppatent_lists,
    write_dira_result,
)
from designclip.pipeline.evaluate.lists import list_patents
from designclip.pipeline.evaluate.metrics import mean_average_precision, rank_order
from designclip.pipeline.release.exclusions import deeppatent_lists

from tests.fixtures.evaluate import unit

DATA = Path(__file__).resolve().parents[2] / "data" / "deeppatent"
PATENTS = ["A", "A", "A", "B", "B", "C", "D", "D", "D", "D"]  # A: 3 views, B: 2, C: 1 (distractor), D: 4


def test_split_one_view_per_query():
    split = deeppatent_split(PATENTS, views_per_query=1, seed=0)
    queries = [PATENTS[r] for r in split.query_rows]
    assert sorted(queries) == ["A", "B", "D"]  # one query per multi-view patent, none from C
    assert split.db_rows.size == 7 and 5 in split.db_rows  # row 5 (C) is a database distractor
    assert sorted(split.query_rows.tolist() + split.db_rows.tolist()) == list(range(10))  # every row once
    assert split.relevant.shape == (3, 7)
    # relevant = the patent's other views: A 3-1=2, B 2-1=1, D 4-1=3
    assert {p: int(n) for p, n in zip(queries, split.relevant.sum(axis=1), strict=True)} == {"A": 2, "B": 1, "D": 3}
    same = np.array([[PATENTS[q] == PATENTS[d] for d in split.db_rows] for q in split.query_rows])
    assert np.array_equal(split.relevant, same)
    assert (split.patents, split.query_patent_count, split.distractor_patents) == (4, 3, 1)


def test_split_two_views_per_query_keeps_one_view_in_the_database():
    split = deeppatent_split(PATENTS, views_per_query=2, seed=0)
    queries = [PATENTS[r] for r in split.query_rows]
    # A: 2 queries (1 left), B: only 1 query (its other view must stay in the database), D: 2 queries (2 left)
    assert sorted(queries) == ["A", "A", "B", "D", "D"]
    assert split.relevant.sum(axis=1).min() >= 1
    assert split.db_rows.size == 5
    with pytest.raises(ValueError, match="1 or 2"):
        deeppatent_split(PATENTS, views_per_query=3)


def test_split_is_seeded():
    first = deeppatent_split(PATENTS, seed=3)
    assert np.array_equal(first.query_rows, deeppatent_split(PATENTS, seed=3).query_rows)
    choices = {tuple(deeppatent_split(PATENTS, seed=s).query_rows) for s in range(10)}
    assert len(choices) > 1  # the seed does choose the query views


def test_eval_hand_computed():
    db = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])
    queries = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.6, 0.8]])  # [0, 2] is normalised to [0, 1]
    relevant = np.array([
        [False, True, True, False],   # scores 1, 0, 0.6, -1: order d0 d2 d1 d3; hits at ranks 2, 3
        [False, False, False, True],  # scores 0, 1, 0.8, 0: order d1 d2 d0 d3 (d0 before d3 on the tie); hit at 4
        [False, False, False, False],  # no relevant view: skipped
        [False, False, True, False],  # scores 0.6, 0.8, 1, -0.6: d2 first; hit at 1
    ])
    result = deeppatent_eval(queries, db, relevant, ks=(1, 3, 5))
    # APs: (1/2 + 2/3)/2 = 7/12, 1/4, 1; mAP = (7/12 + 3/12 + 12/12) / 3 = 22/36 = 11/18
    assert result["mAP"] == pytest.approx(11 / 18)
    # first hits at ranks 2, 4, 1: top1 = 1/3, top3 = 2/3, top5 clipped to 4 -> 3/3
    assert result["top_k"] == pytest.approx({1: 1 / 3, 3: 2 / 3, 5: 1.0})
    assert result["k_used"] == {1: 1, 3: 3, 5: 4}
    assert (result["queries"], result["evaluated"], result["skipped"], result["database"]) == (4, 3, 1, 4)
    assert result["per_query_ap"][[0, 1, 3]] == pytest.approx([7 / 12, 1 / 4, 1.0])
    assert np.isnan(result["per_query_ap"][2])


def test_split_and_eval_on_clustered_views_with_query_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    patents = [f"USD{p:07d}" for p in rng.integers(0, 60, size=400)]
    centres = {p: rng.standard_normal(32) for p in set(patents)}
    features = np.stack([centres[p] + 0.1 * rng.standard_normal(32) for p in patents]).astype(np.float32)
    split = deeppatent_split(patents, views_per_query=2, seed=1)
    whole = deeppatent_eval(features[split.query_rows], features[split.db_rows], split.relevant)
    assert whole["mAP"] > 0.99 and whole["top_k"][1] == 1.0 and whole["skipped"] == 0
    # the same numbers when the queries are scored in blocks of 7, and the same as eval_metrics on the full matrix
    monkeypatch.setattr(eval_deeppatent, "_QUERY_BLOCK", 7)
    blocked = deeppatent_eval(features[split.query_rows], features[split.db_rows], split.relevant)
    assert blocked["mAP"] == pytest.approx(whole["mAP"]) and blocked["top_k"] == whole["top_k"]
    q = features[split.query_rows] / np.linalg.norm(features[split.query_rows], axis=1, keepdims=True)
    d = features[split.db_rows] / np.linalg.norm(features[split.db_rows], axis=1, keepdims=True)
    assert mean_average_precision(q @ d.T, split.relevant)[0] == pytest.approx(whole["mAP"], abs=1e-6)
    # relevance from the patent ids of each side, built per block, gives the same answer
    by_patent = deeppatent_eval_by_patent(
        features[split.query_rows], features[split.db_rows],
        [patents[r] for r in split.query_rows], [patents[r] for r in split.db_rows],
    )
    assert by_patent["mAP"] == pytest.approx(whole["mAP"]) and by_patent["top_k"] == whole["top_k"]


# lines as in DeepPatent's released data/test_query_patent.txt and data/test_db_patent.txt
QUERY_LINES = [
    "I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png 1",
    "I20181127/USD0834581-20181127/USD0834581-20181127-D00010.png 1",
    "",
    "I20180206/USD0809558-20180206/USD0809558-20180206-D00000.png",  # no label column: accepted
]
DB_LINES = [
    "I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1",
    "I20180206/USD0809558-20180206/USD0809558-20180206-D00001.png 25 extra",
]


def _dataset(root: Path, query_lines: list[str], db_lines: list[str]) -> tuple[Path, Path, Path]:
    images = root / "images"
    for line in query_lines + db_lines:
        if line:
            path = images / line.split()[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"png")
    (root / "test_query_patent.txt").write_text("\n".join(query_lines) + "\n")
    (root / "test_db_patent.txt").write_text("\n".join(db_lines) + "\n")
    return root / "test_query_patent.txt", root / "test_db_patent.txt", images


def test_read_deeppatent_lists(tmp_path):
    query_list, db_list, images = _dataset(tmp_path, QUERY_LINES, DB_LINES)
    query_files, db_files, query_patents, db_patents = read_deeppatent_lists(query_list, db_list, images)
    assert query_patents == ["USD0834581", "USD0834581", "USD0809558"]
    assert db_patents == ["USD0834581", "USD0809558"]
    assert query_files[0] == str(images / "I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png")
    assert all(Path(f).is_file() for f in query_files + db_files)
    assert patent_id_from_file("USD0864567-20191029-D00001.png") == "USD0864567"


def test_read_deeppatent_lists_names_the_file_and_line_of_bad_input(tmp_path):
    query_list, db_list, images = _dataset(tmp_path, QUERY_LINES, DB_LINES)
    (images / QUERY_LINES[3].split()[0]).unlink()
    with pytest.raises(FileNotFoundError, match=r"test_query_patent\.txt:4: image .*D00000\.png"):
        read_deeppatent_lists(query_list, db_list, images)
    assert read_deeppatent_lists(query_list, db_list, images, check_images=False)[2][2] == "USD0809558"
    db_list.write_text(DB_LINES[0] + "\nnodash.png 3\n")
    with pytest.raises(ValueError, match=r"test_db_patent\.txt:2: cannot read a patent id from 'nodash\.png'"):
        read_deeppatent_lists(query_list, db_list, images, check_images=False)


def test_write_dira_result_from_scores_with_ties(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(5, 25)).astype(np.float32)  # ties everywhere
    path = write_dira_result(tmp_path / "out" / "result.npy", scores)
    result = np.load(path)
    assert result.dtype == np.int64 and result.shape == (5, 10)
    assert np.array_equal(result, rank_order(scores)[:, :10])
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.npy"]  # no temporary file left behind
    assert write_dira_result(tmp_path / "out", scores) == path  # a folder gets result.npy


def test_write_dira_result_pads_a_small_database_and_accepts_indices(tmp_path):
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.3, 0.3]])
    result = np.load(write_dira_result(tmp_path / "result.npy", scores))
    assert result.tolist() == [[1, 2, 0] + [-1] * 7, [0, 1, 2] + [-1] * 7]
    ranked = np.arange(24).reshape(2, 12)[:, ::-1]
    assert np.load(write_dira_result(tmp_path / "result.npy", ranked)).tolist() == ranked[:, :10].tolist()
    with pytest.raises(ValueError, match="2-D"):
        write_dira_result(tmp_path / "result.npy", np.zeros(3))


def test_write_dira_result_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "result.npy"
    write_dira_result(target, np.array([[0.2, 0.1]]))
    before = target.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(eval_deeppatent.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_dira_result(target, np.array([[0.1, 0.2]]))
    assert target.read_bytes() == before  # the old result survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["result.npy"]


def test_both_map_definitions_on_a_hand_checked_case() -> None:
    """Query 0 (patent P): ranked P1? no: Q, P, P -> official AP (1/2 + 2/3) / 2; pml divides by min(R, k) = 2 too.
    Query 1 (patent Q, 3 relevant, k = max_bin_count = 3): Q, Q, P -> official (1 + 1 + 3/5) / 3, pml 2 / 3."""
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    db = unit(np.array([[0.9, 0.1], [0.8, 0.6], [0.1, 0.9], [0.7, 0.7], [0.2, 0.98]]))
    qp, dbp = ["P", "Q"], ["Q", "P", "Q", "P", "Q"]
    pml = map_at_max_bin_count(q, db, qp, dbp)
    assert pml == pytest.approx(((0.5 + 2 / 3) / 2 + 2 / 3) / 2)  # 0.625
    official = deeppatent_eval_by_patent(q, db, qp, dbp)
    # query 0 full ranking: Q .994, P .8, P .707, Q .2, Q .11 -> P at 2, 3; query 1: Q .994, Q .98, P .707, P .6, Q .11
    assert official["mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + (1 + 1 + 3 / 5) / 3) / 2)
    assert official["top_k"][1] == 0.5  # P@1: query 0's best is patent Q


def test_the_real_deeppatent_list_slice_reads_by_patent() -> None:
    query_files, db_files, query_patents, db_patents = read_deeppatent_lists(
        DATA / "test_query_patent.head.txt", DATA / "test_db_patent.head.txt", "/images", check_images=False)
    assert len(query_files) == 12 and len(db_files) == 32
    assert query_files[0] == "/images/I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png"
    assert query_patents[:3] == ["USD0834581", "USD0834581", "USD0807264"]  # line 3 has a second column of 2
    assert set(query_patents) == set(db_patents) and len(set(query_patents)) == 6
    packaged = next(e for e in deeppatent_lists() if e.name == "deeppatent-test")
    assert list_patents(DATA / "test_query_patent.head.txt", DATA / "test_db_patent.head.txt") <= set(packaged.patents)
