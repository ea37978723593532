"""Index files: write/read round trip, `faiss.read_index` on the file itself, ids.parquet, card.json last."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pyarrow.parquet as pq
import pytest
from designclip.pipeline.index.faiss_index import build_index, key_ids, search_index, tune_index
from designclip.pipeline.index.plan import plan_index
from designclip.pipeline.index.synthetic import clustered_vectors
from designclip.storage import indexes
from designclip.storage.folder import DataFolder
from designclip.storage.indexes import IndexCorrupt, IndexMissing, card_markdown, read_card, read_index, write_index

DIR = "indexes/v9/tag-a/image"


@pytest.fixture(scope="module")
def built() -> dict:
    xb, xq = clustered_vectors(4000, 32, n_queries=200, seed=5)
    keys = [f"K{i:05d}" for i in range(len(xb))]
    ids = key_ids(keys)
    plan = plan_index(len(xb), 32, 10**9, flat_max=100, hnsw_max=100)
    index = build_index(xb, ids, plan)
    tuned = tune_index(index, plan, xb, xq)
    card = {"release": "v9", "model_tag": "tag-a", "name": "image", "vectors": "image", "splits": ["test"],
            "factory": plan.factory, "kind": plan.kind, "n": plan.n, "dim": plan.dim, "reason": plan.reason,
            "est_bytes": plan.est_bytes, "memory_budget_gb": 1.0, "build_seconds": 1.5, "gpu": False,
            "faiss_version": faiss.__version__, "tuned_param": tuned.param, "tuned_value": tuned.value,
            "tuned_settings": tuned.settings, "tune_reason": tuned.reason, "sweep": tuned.sweep,
            "recall_at_10": tuned.recall_at_10, "latency_ms": tuned.latency_ms,
            "exact_latency_ms": tuned.exact_latency_ms, "qps_ratio": tuned.exact_latency_ms / tuned.latency_ms,
            "queries": len(xq), "query_source": "synthetic", "target_recall": 0.95, "left_out": 2,
            "left_out_reason": "image_ok False"}
    return {"xb": xb, "xq": xq, "keys": keys, "ids": ids, "index": index, "card": card, "tuned": tuned}


def test_round_trip_and_plain_faiss_read_index(tmp_path: Path, built: dict) -> None:
    folder = DataFolder(tmp_path)
    write_index(folder, "v9", "tag-a", "image", built["index"], built["ids"], built["keys"], built["card"])
    files = sorted(p.name for p in (tmp_path / DIR).iterdir())
    assert files == ["card.json", "card.md", "ids.parquet", "index.faiss"]  # no temporaries left
    loaded = read_index(folder, "v9", "tag-a", "image")
    assert loaded.card["actual_bytes"] == (tmp_path / DIR / "index.faiss").stat().st_size > 0
    assert loaded.card["factory"] == built["card"]["factory"] and len(loaded.keys_by_id) == 4000
    expected = search_index(built["index"], built["xq"], 10)
    got = search_index(loaded.index, built["xq"], 10)
    assert np.array_equal(expected[1], got[1])  # same tuned setting, same answers
    assert loaded.keys_by_id == dict(zip(built["ids"].tolist(), built["keys"], strict=True))
    _, found = search_index(loaded.index, built["xb"][[7, 3999]], 10)  # approximate: itself among the top 10
    assert built["keys"][7] in [loaded.keys_by_id[int(i)] for i in found[0]]
    assert built["keys"][3999] in [loaded.keys_by_id[int(i)] for i in found[1]]
    plain = faiss.read_index(str(tmp_path / DIR / "index.faiss"))  # what any FAISS user does
    assert plain.ntotal == 4000 and faiss.extract_index_ivf(plain).nprobe == built["tuned"].value
    assert np.array_equal(plain.search(built["xq"], 10)[1], got[1])
    table = pq.read_table(tmp_path / DIR / "ids.parquet")
    assert table.column_names == ["id", "key", "row"]
    assert table.column("key").to_pylist() == built["keys"] and table.column("row").to_pylist() == list(range(4000))
    assert table.column("id").to_pylist() == built["ids"].tolist()
    md = (tmp_path / DIR / "card.md").read_text()
    assert built["card"]["factory"] in md and "recall@10 vs exact" in md and "faiss.read_index" in md


def test_missing_and_unfinished_indexes_raise_index_missing(tmp_path: Path, built: dict,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = DataFolder(tmp_path)
    with pytest.raises(IndexMissing, match="designclip index --release v9 --model tag-a"):
        read_index(folder, "v9", "tag-a", "image")
    write_index(folder, "v9", "tag-a", "image", built["index"], built["ids"], built["keys"], built["card"])

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(indexes.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_index(folder, "v9", "tag-a", "image", built["index"], built["ids"], built["keys"], built["card"])
    assert read_card(folder, "v9", "tag-a", "image") is None  # the half-rewritten folder is not taken as done
    with pytest.raises(IndexMissing):
        read_index(folder, "v9", "tag-a", "image")


def test_ids_must_match_the_index(tmp_path: Path, built: dict) -> None:
    folder = DataFolder(tmp_path)
    with pytest.raises(ValueError, match="must match"):
        write_index(folder, "v9", "tag-a", "image", built["index"], built["ids"][:10], built["keys"][:10], {})
    with pytest.raises(ValueError, match="do not match the ids stored"):
        write_index(folder, "v9", "tag-a", "image", built["index"], built["ids"][::-1], built["keys"], {})
    write_index(folder, "v9", "tag-a", "image", built["index"], built["ids"], built["keys"], built["card"])
    pq.write_table(pq.read_table(tmp_path / DIR / "ids.parquet").slice(0, 10), tmp_path / DIR / "ids.parquet")
    with pytest.raises(IndexCorrupt, match="rebuild it"):
        read_index(folder, "v9", "tag-a", "image")


def test_card_markdown_shows_the_sweep(built: dict) -> None:
    md = card_markdown({**built["card"], "actual_bytes": 1 << 20})
    assert "| nprobe | k_factor_rf | recall@10 | ms/query |" in md
    assert f"`nprobe = {built['tuned'].value}` with `k_factor_rf = " in md
    assert "left out: 2 (image_ok False)" in md
