"""Recall of a grown index measured again after each append: over every release held (read back and checked
unchanged), with queries of every year, the size estimate at the new size, and when a fresh build would differ."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.index.append import append_release
from designclip.pipeline.index.driver import IndexOptions
from designclip.pipeline.index.grown_checks import AppendRefused
from designclip.pipeline.index.grown_measure import _queries, plan_of_card, rebuild_advice
from designclip.pipeline.index.inputs import IndexInputs
from designclip.pipeline.index.plan import flat_bytes, hnsw_bytes, ivfpq_bytes
from designclip.storage import layout
from designclip.storage.folder import DataFolder

from tests.pipeline.index.synthetic_releases import write_release

SHARDS = {"train": [600], "val": [100], "test": [100]}


@pytest.fixture()
def root(tmp_path: Path) -> str:
    root = str(tmp_path / "data")
    for release, year in (("2021.1", 2021), ("2022.1", 2022), ("2023.1", 2023)):
        write_release(root, release, year, SHARDS)
    return root


def test_a_flat_index_grown_past_its_limit_says_a_rebuild_would_choose_hnsw(root: str) -> None:
    options = IndexOptions(flat_max=1000)
    first = append_release(root, "2021.1", "syn", options=options)
    assert first["kind"] == "flat" and first["rebuild_advice"] is None and first["est_bytes"] == flat_bytes(799, 32)
    second = append_release(root, "2022.1", "syn", options=options)
    assert second["kind"] == "flat" and second["recall_at_10"] == 1.0 and second["est_bytes"] == flat_bytes(1598, 32)
    assert "would choose HNSW32,Flat" in second["rebuild_advice"] and "1598 vectors > 1000" in second["rebuild_advice"]


def test_the_size_estimate_follows_the_grown_size(root: str) -> None:
    hnsw = append_release(root, "2021.1", "syn", options=IndexOptions(flat_max=100))
    card = {**hnsw, "n": 0}
    assert plan_of_card(card, 5000).est_bytes == hnsw_bytes(5000, 32) and plan_of_card(card, 5000).kind == "hnsw"
    ivf = {"kind": "ivfpq", "dim": 32, "factory": "IVF64,PQ8x4fs,Refine(SQfp16)", "reason": "small budget",
           "params": {"nlist": 64, "pq_m": 8, "refine": "sqfp16"}}
    assert plan_of_card(ivf, 10_000).est_bytes == ivfpq_bytes(10_000, 32, 64, 8, 2)
    budget_gb = hnsw_bytes(1000, 32) / 2**30
    assert rebuild_advice(plan_of_card(card, 999), IndexOptions(flat_max=100, memory_budget_gb=budget_gb)) is None
    assert "would choose IVF" in rebuild_advice(plan_of_card(card, 2000),
                                                IndexOptions(flat_max=100, memory_budget_gb=budget_gb))


def test_queries_are_drawn_from_every_release() -> None:
    def part(value: float) -> IndexInputs:
        return IndexInputs(np.zeros((1, 2), np.float32), ["k"], np.full((300, 2), value, np.float32), "q", 1, 0, "")

    picked = _queries([part(1.0), part(2.0), part(3.0)], IndexOptions(max_queries=300))
    counts = {v: int((picked[:, 0] == v).sum()) for v in (1.0, 2.0, 3.0)}
    assert len(picked) == 300 and all(60 <= c <= 140 for c in counts.values()), counts


def test_a_held_release_embedded_again_refuses_the_next_append(root: str) -> None:
    options = IndexOptions(flat_max=100)
    append_release(root, "2021.1", "syn", options=options)
    folder = DataFolder(root)
    stats = layout.embed_stats("2021.1", "syn", "train", 0)
    folder.write_json(stats, {**folder.read_json(stats), "seconds": 99})
    with pytest.raises(AppendRefused, match="release 2021.1 was re-embedded since it joined grown index 'all'"):
        append_release(root, "2022.1", "syn", options=options)


def test_a_held_release_whose_vectors_are_gone_says_how_to_remake_them(root: str) -> None:
    options = IndexOptions(flat_max=100)
    append_release(root, "2021.1", "syn", options=options)
    append_release(root, "2022.1", "syn", options=options)
    shutil.rmtree(DataFolder(root).path(layout.embed_dir("2021.1", "syn")))
    with pytest.raises(AppendRefused, match="vectors by syn are gone.*`designclip embed --release 2021.1 --model syn`"):
        append_release(root, "2023.1", "syn", options=options)


def test_three_years_keep_recall_over_all_of_them(root: str) -> None:
    options = IndexOptions(flat_max=100, max_queries=300)
    cards = [append_release(root, r, "syn", options=options) for r in ("2021.1", "2022.1", "2023.1")]
    assert [c["n"] for c in cards] == [799, 1598, 2397] and all(c["recall_at_10"] >= 0.95 for c in cards)
    assert [r["first_id"] for r in cards[-1]["releases"]] == [0, 799, 1598]
    assert cards[-1]["queries"] == 150 and cards[-1]["held_out_separate"]  # 300 drawn from all three, half tune
