"""Grown index files: a generation's index + key table, card.json naming it written last; readers get a pair that
agrees, leftovers of a crashed write are cleared, keys say their release."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.grown_indexes import (
    KEYS,
    GrownIndexMissing,
    check_name,
    grown_models,
    qualified_key,
    read_grown_index,
    split_key,
    write_grown_index,
)
from designclip.storage.indexes import IndexCorrupt

CARD = {"index_name": "all", "model_tag": "syn", "vectors": "image", "factory": "Flat", "kind": "flat", "dim": 4,
        "n": 0, "reason": "small", "est_bytes": 10, "memory_budget_gb": 8.0, "tune_reason": "exact",
        "recall_at_10": 1.0, "queries": 3, "query_source": "q", "target_recall": 0.95, "latency_ms": 0.1,
        "exact_latency_ms": 0.1, "rebuild_advice": None, "releases": []}


def _index(n: int) -> faiss.Index:
    index = faiss.index_factory(4, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    x = np.eye(4, dtype=np.float32)[np.arange(n) % 4]
    index.add_with_ids(x, np.arange(n, dtype=np.int64))
    return index


def _keys(releases: list[tuple[str, int]]) -> pa.Table:
    rows = [(r, f"USD{r[:4]}{i:04d}-1") for r, n in releases for i in range(n)]
    ids = np.arange(len(rows), dtype=np.int64)
    return pa.table({"id": ids, "release": [r for r, _ in rows], "key": [k for _, k in rows], "row": ids}, schema=KEYS)


def _card(releases: list[tuple[str, int]]) -> dict:
    first = np.cumsum([0] + [n for _, n in releases])
    return {**CARD, "n": int(first[-1]), "releases": [
        {"release": r, "n": n, "first_id": int(f), "left_out": 0, "add_seconds": 0.1, "appended_at": "now"}
        for (r, n), f in zip(releases, first, strict=False)]}


def test_generations_switch_with_the_card_and_keys_say_their_release(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    one = [("2021.1", 3)]
    first = write_grown_index(folder, "all", "syn", "image", _index(3), _keys(one), _card(one))
    assert first["generation"] == "g000001" and first["actual_bytes"] > 0
    two = [("2021.1", 3), ("2022.1", 2)]
    second = write_grown_index(folder, "all", "syn", "image", _index(5), _keys(two), _card(two))
    where = Path(folder.path(layout.grown_index_dir("all", "syn", "image")))
    assert where == tmp_path / "indexes" / "@all" / "syn" / "image"
    assert sorted(p.name for p in where.iterdir()) == ["card.json", "g000002"]
    assert "| 2022.1 | 2 | 3..4 |" in (where / "g000002" / "card.md").read_text()
    loaded = read_grown_index(folder, "all", "syn", "image")
    assert loaded.card["generation"] == second["generation"] and loaded.index.ntotal == 5
    assert loaded.keys_by_id == {0: "2021.1/USD20210000-1", 1: "2021.1/USD20210001-1", 2: "2021.1/USD20210002-1",
                                 3: "2022.1/USD20220000-1", 4: "2022.1/USD20220001-1"}
    assert grown_models(folder, "all") == ["syn"] and grown_models(folder, "other") == []


def test_leftovers_of_a_crashed_write_are_cleared_and_never_read(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    one = [("2021.1", 3)]
    write_grown_index(folder, "all", "syn", "image", _index(3), _keys(one), _card(one))
    where = Path(folder.path(layout.grown_index_dir("all", "syn", "image")))
    (where / "g000007").mkdir()  # a crashed append's half-written generation
    (where / "g000007" / "index.faiss").write_bytes(b"half")
    assert read_grown_index(folder, "all", "syn", "image").index.ntotal == 3
    two = [("2021.1", 3), ("2022.1", 1)]
    card = write_grown_index(folder, "all", "syn", "image", _index(4), _keys(two), _card(two))
    assert card["generation"] == "g000002" and sorted(p.name for p in where.iterdir()) == ["card.json", "g000002"]


def test_a_key_table_out_of_step_is_refused_on_write_and_on_read(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    one = [("2021.1", 3)]
    with pytest.raises(ValueError, match="2 keys for 3 indexed vectors"):
        write_grown_index(folder, "all", "syn", "image", _index(3), _keys([("2021.1", 2)]), _card(one))
    card = write_grown_index(folder, "all", "syn", "image", _index(3), _keys(one), _card(one))
    keys = Path(folder.path(layout.grown_index_dir("all", "syn", "image")), card["generation"], "keys.parquet")
    pq.write_table(_keys([("2021.1", 2)]), keys)
    with pytest.raises(IndexCorrupt, match="append its releases \\(2021.1\\) again"):
        read_grown_index(folder, "all", "syn", "image")
    with pytest.raises(GrownIndexMissing, match="--append --into all --release RELEASE --model other"):
        read_grown_index(folder, "all", "other", "image")


def test_names_and_keys() -> None:
    assert check_name("all-years") == "all-years" and layout.grown_index_root("x") == "indexes/@x"
    for bad in ("", "../x", "a/b", "@all", ".hidden"):
        with pytest.raises(ValueError, match="grown index name"):
            check_name(bad)
    assert split_key(qualified_key("2021.1", "USD1-1")) == ("2021.1", "USD1-1")
    for bad in ("USD1-1", "/USD1-1", "2021.1/"):
        with pytest.raises(ValueError, match="not a RELEASE/KEY key"):
            split_key(bad)
