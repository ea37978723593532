"""`index --append` through the real code path on stored embeddings: two yearly releases grown into one index
(HNSW and IVF-PQ), ids that continue, keys of both releases found, a release appended twice kept, crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from designclip.pipeline.index.append import APPEND, GrownUnit, append_release
from designclip.pipeline.index.driver import IndexOptions
from designclip.pipeline.index.faiss_index import search_index
from designclip.storage import grown_indexes, layout
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import read_grown_card, read_grown_index, read_grown_keys

from tests.pipeline.index.synthetic_releases import write_release

HNSW = IndexOptions(flat_max=500)  # past 500 vectors: HNSW, as a real year (~300k views) gets
YEARS = {"2021.1": (2021, {"train": [700, 500], "val": [150], "test": [150]}),
         "2022.1": (2022, {"train": [800, 400], "val": [100], "test": [200]})}


@pytest.fixture()
def two_years(tmp_path: Path) -> dict:
    root = tmp_path / "data"
    vectors = {release: write_release(root, release, year, shards) for release, (year, shards) in YEARS.items()}
    return {"root": str(root), "vectors": vectors}


def _top_keys(root: str, vector: np.ndarray, k: int = 1) -> list[str]:
    loaded = read_grown_index(DataFolder(root), "all", "syn", "image")
    _, ids = search_index(loaded.index, vector, k)
    return [loaded.keys_by_id[int(i)] for i in ids[0]]


def test_two_releases_grow_one_hnsw_index_with_ids_that_continue(two_years: dict) -> None:
    root, vectors = two_years["root"], two_years["vectors"]
    first = append_release(root, "2021.1", "syn", options=HNSW)
    n1 = len(vectors["2021.1"])
    assert (first["kind"], first["n"], first["skipped"]) == ("hnsw", n1, False)
    assert [r["release"] for r in first["releases"]] == ["2021.1"] and first["releases"][0]["left_out"] == 1
    second = append_release(root, "2022.1", "syn", options=HNSW)
    n2 = len(vectors["2022.1"])
    assert (second["kind"], second["factory"], second["n"]) == ("hnsw", first["factory"], n1 + n2)
    assert [(r["release"], r["first_id"], r["n"]) for r in second["releases"]] == [("2021.1", 0, n1),
                                                                                   ("2022.1", n1, n2)]
    # grown, not rebuilt: the first build is the only one; recall was measured again over both years
    assert second["created_at"] == first["created_at"] and second["build_seconds"] == first["build_seconds"]
    assert second["recall_at_10"] >= 0.95 and second["met_target"] and second["queries"] > 0
    assert second["generation"] != first["generation"] and second["rebuild_advice"] is None
    folder = DataFolder(root)
    keys = read_grown_keys(folder, "all", "syn", "image", read_grown_card(folder, "all", "syn", "image"))
    assert keys.column("id").to_pylist() == list(range(n1 + n2)) == keys.column("row").to_pylist()
    assert keys.column("release").to_pylist() == ["2021.1"] * n1 + ["2022.1"] * n2
    assert keys.column("key").to_pylist() == [*vectors["2021.1"], *vectors["2022.1"]]
    # search finds views of both releases, under keys that say which
    for release in YEARS:
        key, vector = list(vectors[release].items())[123]
        assert _top_keys(root, vector) == [f"{release}/{key}"]
    gen_dirs = [p.name for p in Path(second["path"]).iterdir() if p.is_dir()]
    assert gen_dirs == [second["generation"]]  # the old generation is gone once the card names the new one
    assert faiss.read_index(str(Path(second["path"], second["generation"], "index.faiss"))).ntotal == n1 + n2
    assert "2022.1" in Path(second["path"], second["generation"], "card.md").read_text()


def test_ivf_pq_grows_too_and_keeps_its_training(two_years: dict) -> None:
    root = two_years["root"]
    small = IndexOptions(flat_max=100, memory_budget_gb=0.0003)
    first = append_release(root, "2021.1", "syn", options=small)
    assert first["kind"] == "ivfpq" and first["factory"].startswith("IVF")
    before = read_grown_index(DataFolder(root), "all", "syn", "image").index
    centroids = faiss.extract_index_ivf(before).quantizer.reconstruct_n(0, faiss.extract_index_ivf(before).nlist)
    second = append_release(root, "2022.1", "syn", options=small)
    after = read_grown_index(DataFolder(root), "all", "syn", "image").index
    ivf = faiss.extract_index_ivf(after)
    assert np.array_equal(ivf.quantizer.reconstruct_n(0, ivf.nlist), centroids)  # added to, not retrained
    assert after.ntotal == second["n"] == first["n"] + len(two_years["vectors"]["2022.1"])
    assert second["recall_at_10"] >= 0.95 and second["tuned_param"] == "nprobe"
    appended = two_years["vectors"]["2022.1"]
    _, ids = search_index(after, np.stack(list(appended.values())), 10)
    keys = read_grown_index(DataFolder(root), "all", "syn", "image").keys_by_id
    found = [f"2022.1/{key}" in {keys[int(i)] for i in row} for key, row in zip(appended, ids, strict=True)]
    assert np.mean(found) >= 0.95  # an appended view is found by its own vector (approximately: IVF-PQ)


def test_appending_a_release_twice_is_a_no_op_that_says_so(two_years: dict, caplog: pytest.LogCaptureFixture) -> None:
    root = two_years["root"]
    append_release(root, "2021.1", "syn", options=HNSW)
    grown = append_release(root, "2022.1", "syn", options=HNSW)
    with caplog.at_level("INFO", logger="designclip.index"):
        again = append_release(root, "2021.1", "syn", options=HNSW)
    assert again["skipped"] and again["n"] == grown["n"] and again["generation"] == grown["generation"]
    assert "already holds release 2021.1 (ids 0.." in caplog.text
    loaded = read_grown_index(DataFolder(root), "all", "syn", "image")
    assert loaded.index.ntotal == grown["n"] and len(set(loaded.keys_by_id.values())) == grown["n"]


@pytest.mark.parametrize("fail_at", ["index file", "key table", "card"])
def test_a_crash_mid_append_leaves_the_grown_index_as_it_was(two_years: dict, monkeypatch: pytest.MonkeyPatch,
                                                             fail_at: str) -> None:
    root = two_years["root"]
    first = append_release(root, "2021.1", "syn", options=HNSW)
    target = {"index file": (grown_indexes, "_put_index"), "key table": (grown_indexes.pq, "write_table"),
              "card": (grown_indexes.DoneMarker, "write")}[fail_at]

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError(f"simulated crash writing the {fail_at}")

    with monkeypatch.context() as patch:
        patch.setattr(*target, crash)
        with pytest.raises(OSError, match="simulated crash"):
            append_release(root, "2022.1", "syn", options=HNSW)
    folder = DataFolder(root)
    assert read_grown_card(folder, "all", "syn", "image") == json.loads(Path(first["path"], "card.json").read_text())
    loaded = read_grown_index(folder, "all", "syn", "image")  # the old pair, whole and in step
    assert loaded.index.ntotal == first["n"] and loaded.card["generation"] == first["generation"]
    assert {k.split("/")[0] for k in loaded.keys_by_id.values()} == {"2021.1"}
    again = append_release(root, "2022.1", "syn", options=HNSW)  # the rerun finishes and clears the leftovers
    assert again["n"] == first["n"] + len(two_years["vectors"]["2022.1"])
    assert [p.name for p in Path(again["path"]).iterdir() if p.is_dir()] == [again["generation"]]


def test_stage_contract_done_after_the_append(two_years: dict) -> None:
    folder = DataFolder(two_years["root"])
    unit = GrownUnit("years", "2021.1", "syn", "text")
    assert not APPEND.is_done(folder, unit, HNSW)
    calls: list[tuple[int, int | None]] = []
    result = APPEND.run(folder, unit, HNSW, lambda done, total=None: calls.append((done, total)))
    assert not result.skipped and calls == [(0, 1), (1, 1)] and result.unit == "years+2021.1/syn/text"
    assert result.where == folder.path(layout.grown_index_dir("years", "syn", "text"))
    assert result.stats["vectors"] == "text" and result.stats["query_source"].startswith("drawing image vectors")
    assert APPEND.is_done(folder, unit, HNSW) and APPEND.run(folder, unit, HNSW).skipped
