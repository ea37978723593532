"""The INDEX driver on stored embeddings: a synthetic release (bad rows, larger sizes), the real one, and its stage
contract without Prefect (units per kind, one index built, the second run kept, other settings redone)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pytest
from designclip.pipeline.common.stage import Scope
from designclip.pipeline.index.driver import INDEX, IndexOptions, IndexUnit, build_release_index
from designclip.pipeline.index.faiss_index import IndexBuildError, search_index
from designclip.pipeline.index.synthetic import clustered_vectors
from designclip.storage import layout
from designclip.storage.embeddings import (
    EMBED_META,
    embeddings_fingerprint,
    release_fingerprint,
    write_encoder_record,
    write_shard_embeddings,
)
from designclip.storage.folder import DataFolder
from designclip.storage.indexes import read_card, read_index

SHARDS = {"train": [1200, 1300], "test": [500]}
BAD_IMAGES = {("train", 1): [3, 700], ("test", 0): [10, 11, 12]}  # rows whose PNG "did not decode"
NO_CAPTION = {("train", 0): [5]}


def _write_synthetic(root: Path, has_text: bool = True) -> dict:
    """Release `vs` (sizes.json + marker only) embedded by tag `syn`: 3000 clustered 64-d rows in 3 shards."""
    folder = DataFolder(root)
    folder.write_json(layout.release_marker("vs"), {"fingerprint": {"weeks": ["2021-01-05"]}})
    for split, sizes in SHARDS.items():
        folder.write_json(layout.release_file("vs", layout.release_sizes_name(split)),
                          {f"{i:05d}.tar": n for i, n in enumerate(sizes)})
    write_encoder_record(folder, "vs", "syn", {"tag": "syn", "dim": 64, "has_text": has_text,
                                              "weights_sha256": "0" * 64, "spec": {"model": "syn"}})
    image, _ = clustered_vectors(3000, 64, seed=11)
    noise = np.random.default_rng(12).standard_normal(image.shape).astype(np.float32) * 0.02
    text = image + noise
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    fingerprint = release_fingerprint(folder, "vs")
    start, keys = 0, {}
    for split, sizes in SHARDS.items():
        row = 0
        for number, n in enumerate(sizes):
            img, txt = image[start:start + n].copy(), text[start:start + n].copy()
            rows = []
            for i in range(n):
                key = f"USD{split}{number}{i:05d}-1"
                bad = i in BAD_IMAGES.get((split, number), [])
                no_caption = i in NO_CAPTION.get((split, number), [])
                if bad:
                    img[i] = 0
                rows.append({"row": row + i, "key": key, "patent_id": key[:-2], "title": "t", "fig": "1",
                             "view": "front", "split": split, "cls": 3, "uspc_class": "D6", "locarno_class": "06",
                             "caption": None if no_caption else "a chair", "shard": f"{split}/{number:05d}.tar",
                             "shard_index": i, "image_ok": not bad,
                             "error": ("image_unreadable: broken" if bad
                                       else "caption_missing" if no_caption else None),
                             "text_ok": not no_caption})
                keys[key] = (img[i], txt[i])
            write_shard_embeddings(folder, "vs", "syn", split, number, img, txt if has_text else None,
                                   pa.Table.from_pylist(rows, schema=EMBED_META), {"release_fingerprint": fingerprint})
            start += n
            row += n
    return {"root": str(root), "vectors": keys}


@pytest.fixture()
def synthetic(tmp_path: Path) -> dict:
    return _write_synthetic(tmp_path / "data")


def test_image_index_leaves_out_unreadable_images_and_maps_keys(synthetic: dict) -> None:
    card = build_release_index(synthetic["root"], "vs", "syn", "image", ("train", "test"), flat_max=1000)
    assert (card["kind"], card["factory"], card["skipped"]) == ("hnsw", "HNSW32,Flat", False)
    assert (card["rows_total"], card["left_out"], card["n"]) == (3000, 5, 2995)
    assert "image_ok False" in card["left_out_reason"] and card["queries"] == 500 and card["held_out_separate"]
    assert card["recall_at_10"] >= 0.95 and card["tuned_param"] == "efSearch" and card["qps_ratio"] > 0
    assert card["query_source"].startswith("caption text vectors")
    loaded = read_index(DataFolder(synthetic["root"]), "vs", "syn", "image")
    bad_keys = {"USDtrain100003-1", "USDtrain100700-1", "USDtest000010-1", "USDtest000011-1", "USDtest000012-1"}
    assert set(loaded.keys_by_id.values()) == set(synthetic["vectors"]) - bad_keys
    key = "USDtest000400-1"
    _, ids = search_index(loaded.index, synthetic["vectors"][key][1], 1)  # its caption finds its drawing
    assert loaded.keys_by_id[int(ids[0, 0])] == key
    assert faiss.read_index(str(Path(card["path"]) / "index.faiss")).ntotal == 2995


def test_unchanged_embeddings_and_settings_skip_the_rebuild(synthetic: dict) -> None:
    root = synthetic["root"]
    first = build_release_index(root, "vs", "syn", "text", ("train", "test"), flat_max=1000)
    assert (first["n"], first["left_out"]) == (2999, 1) and first["query_source"].startswith("drawing image")
    again = build_release_index(root, "vs", "syn", "text", ("train", "test"), flat_max=1000)
    assert again["skipped"] and again["created_at"] == first["created_at"]
    other = build_release_index(root, "vs", "syn", "text", ("train", "test"), flat_max=1000, target_recall=0.9)
    assert not other["skipped"] and other["settings"]["target_recall"] == 0.9
    folder = DataFolder(root)
    before = embeddings_fingerprint(folder, "vs", "syn", ("train", "test"))
    stats_rel = layout.embed_stats("vs", "syn", "test", 0)
    folder.write_json(stats_rel, {**folder.read_json(stats_rel), "seconds": 99})  # the shard was embedded again
    assert embeddings_fingerprint(folder, "vs", "syn", ("train", "test")) != before
    rebuilt = build_release_index(root, "vs", "syn", "text", ("train", "test"), flat_max=1000, target_recall=0.9)
    assert not rebuilt["skipped"] and rebuilt["embeddings_fingerprint"] != other["embeddings_fingerprint"]


def test_small_budget_builds_ivf_pq_that_still_reaches_the_target(synthetic: dict) -> None:
    card = build_release_index(synthetic["root"], "vs", "syn", "image", ("train", "test"), memory_budget_gb=0.0012,
                               flat_max=100)
    assert card["kind"] == "ivfpq" and card["factory"].endswith(",RFlat") and card["est_bytes"] <= 1.2e6
    assert card["recall_at_10"] >= 0.95 and card["tuned_param"] == "nprobe"
    assert set(card["tuned_settings"]) == {"nprobe", "k_factor_rf"} and len(card["sweep"]) > 1


def test_image_only_models_have_no_text_index(tmp_path: Path) -> None:
    data = _write_synthetic(tmp_path / "img-only", has_text=False)
    with pytest.raises(IndexBuildError, match="image-only model"):
        build_release_index(data["root"], "vs", "syn", "text", ("train", "test"))
    card = build_release_index(data["root"], "vs", "syn", "image", ("train", "test"))
    assert card["kind"] == "flat" and card["query_source"].startswith("image vectors of indexed views")


def test_index_of_the_real_embedded_release(embedded_v1: dict) -> None:
    root, release, tag = embedded_v1["data_root"], embedded_v1["release"], embedded_v1["tag"]
    card = build_release_index(root, release, tag, "image")
    folder = DataFolder(root)
    manifest_rows = sum(folder.read_json(layout.release_file(release, layout.release_sizes_name(s)))[name]
                        for s in ("train", "val", "test")
                        for name in folder.read_json(layout.release_file(release, layout.release_sizes_name(s))))
    assert card["rows_total"] == manifest_rows and card["n"] + card["left_out"] == manifest_rows
    assert card["kind"] == "flat" and card["recall_at_10"] == 1.0 and card["queries"] > 0
    loaded = read_index(folder, release, tag, "image")
    assert loaded.index.ntotal == card["n"] and len(set(loaded.keys_by_id.values())) == card["n"]
    assert faiss.read_index(str(Path(card["path"]) / "index.faiss")).ntotal == card["n"]
    assert read_card(folder, release, tag, "image")["embeddings_fingerprint"] == card["embeddings_fingerprint"]


def test_an_index_is_built_once_and_kept(tmp_path: Path) -> None:
    folder = DataFolder(_write_synthetic(tmp_path / "data")["root"])
    options = IndexOptions(splits=("train", "test"), flat_max=1000)
    scope = Scope(dt.date(2021, 1, 1), dt.date(2021, 12, 31), release="vs", run="syn", size_profile="px512")
    assert INDEX.units(folder, scope, options) == [IndexUnit("vs", "syn", "image"), IndexUnit("vs", "syn", "text")]
    unit = IndexUnit("vs", "syn", "text")
    assert not INDEX.is_done(folder, unit, options)
    calls: list[tuple[int, int | None]] = []
    first = INDEX.run(folder, unit, options, lambda done, total=None: calls.append((done, total)))
    assert not first.skipped and first.stage == "index" and first.unit == "syn/text" and calls == [(0, 1), (1, 1)]
    assert first.stats["kind"] == "hnsw" and first.stats["settings"] == options.settings("text")
    assert Path(first.where, "index.faiss").is_file() and INDEX.is_done(folder, unit, options)
    again = INDEX.run(folder, unit, options)
    assert again.skipped and again.stats["created_at"] == first.stats["created_at"]
    other = dataclasses.replace(options, target_recall=0.9)
    assert not INDEX.is_done(folder, unit, other) and not INDEX.run(folder, unit, other).skipped
