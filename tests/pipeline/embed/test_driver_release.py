"""The embed stage on the real release v1: files per shard, alignment, bad drawings, resume, image-only models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from designclip.pipeline.embed.driver import embed_release
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.storage import embeddings, layout
from designclip.storage.embeddings import EmbeddingsMissing, load_split_vectors
from designclip.storage.folder import DataFolder

from tests.fixtures.embed import rewrite_tar
from tests.fixtures.release import read_samples

SPLITS = ("train", "val", "test")


def manifest_rows(data: Path, split: str) -> list[dict]:
    rows = pq.read_table(data / "releases/v1/manifest.parquet").to_pylist()
    return sorted((r for r in rows if r["split"] == split), key=lambda r: (r["shard"], r["shard_index"]))


def shard_files(data: Path, tag: str) -> set[str]:
    root = data / layout.embed_dir("v1", tag)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_vectors_and_metadata_align_with_the_release(embedded_v1: dict, release_v1: dict) -> None:
    data, tag = Path(embedded_v1["data_root"]), embedded_v1["tag"]
    folder = DataFolder(data)
    assert tag == "tiny-untrained"
    assert embeddings.embedded_splits(folder, "v1", tag) == list(SPLITS)
    record = embeddings.read_encoder_record(folder, "v1", tag)
    assert record["dim"] == 64 and record["spec"]["model"] == embedded_v1["model"]
    for split in SPLITS:
        vectors = load_split_vectors(folder, "v1", tag, split)
        manifest = manifest_rows(data, split)
        n = release_v1["splits"][split]["samples"]
        assert len(vectors) == len(manifest) == n
        assert vectors.image.shape == vectors.text.shape == (n, 64)
        assert vectors.image.dtype == vectors.text.dtype == np.float32
        meta = vectors.meta.to_pylist()
        assert [m["row"] for m in meta] == list(range(n))
        for m, r in zip(meta, manifest, strict=True):
            assert {k: m[k] for k in ("key", "split", "shard", "shard_index", "patent_id", "fig", "view", "cls",
                                      "uspc_class", "locarno_class")} == \
                {k: r[k] for k in ("key", "split", "shard", "shard_index", "patent_id", "fig", "view", "cls",
                                   "uspc_class", "locarno_class")}
            assert m["image_ok"] and m["text_ok"] and m["error"] is None and m["title"] and m["caption"]
        assert vectors.image_ok.all()
        parts = list(embeddings.iter_split_vectors(folder, "v1", tag, split))
        assert [s.name for s, _ in parts] == sorted({m["shard"] for m in meta})
        np.testing.assert_array_equal(np.concatenate([p.image for _, p in parts]), vectors.image)
        np.testing.assert_array_equal(np.concatenate([p.text for _, p in parts]), vectors.text)
        np.testing.assert_allclose(np.linalg.norm(vectors.image, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(vectors.text, axis=1), 1.0, atol=1e-5)
    stats = json.loads((data / layout.embed_stats("v1", tag, "test", 0)).read_text())
    assert stats["samples"] == stats["image_ok"] == release_v1["splits"]["test"]["samples"] // 2
    assert stats["failures"] == {} and stats["dim"] == 64 and stats["dtype"] == "float32"
    assert stats["encoder"] == tag and stats["seconds"] > 0 and stats["samples_per_s"] > 0
    assert stats["weights_sha256"] == record["weights_sha256"]
    assert shard_files(data, tag) == {"encoder.json"} | {
        f"{split}/{n:05d}.{ext}" for split in SPLITS for n in range(release_v1["splits"][split]["shards"])
        for ext in ("image.npy", "text.npy", "parquet", "stats.json")}


def test_stored_vectors_are_the_models_own(embedded_v1: dict, tiny_export: Path) -> None:
    """An independent path (load_exported + the export's transform + tokenizer) gives the stored rows."""
    import torch
    from designclip.pipeline.train.data import decode_image
    from designclip.pipeline.train.export import exported_eval_transform, load_exported

    data = Path(embedded_v1["data_root"])
    model = load_exported(tiny_export)
    transform = exported_eval_transform(model)
    samples = read_samples(data / "releases/v1/val/00000.tar")
    with torch.no_grad():
        image = model.encode_image(torch.stack([transform(decode_image(m["png"])) for _, m in samples])).numpy()
        text = model.encode_text(model.tokenizer([m["txt"].decode() for _, m in samples])).numpy()
    stored = load_split_vectors(DataFolder(data), "v1", embedded_v1["tag"], "val")
    n = len(samples)
    assert stored.keys[:n] == [k for k, _ in samples]
    np.testing.assert_allclose(stored.image[:n], image, atol=1e-5)
    np.testing.assert_allclose(stored.text[:n], text, atol=1e-5)
    assert stored.meta.column("caption").to_pylist()[:n] == [m["txt"].decode() for _, m in samples]


def test_an_unreadable_drawing_is_a_recorded_zero_row(embedded_v1: dict, release_copy: Path, tiny_export: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    shard = release_copy / "releases/v1/test/00000.tar"
    bad = read_samples(shard)[2][0]
    rewrite_tar(shard, lambda name, data: data[:100] if name == f"{bad}.png" else data)
    with caplog.at_level(logging.WARNING, logger="designclip.embed"):
        summary = embed_release(str(release_copy), "v1", EncoderSpec(str(tiny_export)), splits=("test",))
    assert (summary["shards"], summary["samples"], summary["image_ok"], summary["failures"]) == (2, 14, 13, 1)
    assert summary["failures_by_reason"] == {"image_unreadable": 1}
    assert summary["failed_keys"] == {"image_unreadable": [bad]}
    assert any(bad in r.getMessage() and "image_unreadable" in r.getMessage() for r in caplog.records)

    folder = DataFolder(release_copy)
    got = load_split_vectors(folder, "v1", "tiny-untrained", "test")
    clean = load_split_vectors(DataFolder(embedded_v1["data_root"]), "v1", embedded_v1["tag"], "test")
    assert got.keys == clean.keys
    row = got.keys.index(bad)
    meta = got.meta.to_pylist()[row]
    assert meta["image_ok"] is False and meta["error"].startswith("image_unreadable: ") and meta["text_ok"]
    assert not got.image[row].any()
    assert got.image_ok.tolist() == [k != bad for k in got.keys]
    np.testing.assert_allclose(got.text, clean.text, atol=1e-6)  # the caption is still embedded
    others = got.image_ok
    np.testing.assert_allclose(got.image[others], clean.image[others], atol=1e-6)
    stats = embeddings.read_shard_stats(folder, "v1", "tiny-untrained", "test", 0)
    assert stats["failures"] == {"image_unreadable": [bad]} and stats["image_ok"] == stats["samples"] - 1


def test_a_crash_mid_shard_leaves_it_unfinished_and_a_rerun_completes_it(embedded_v1: dict, release_copy: Path,
                                                                           tiny_export: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder, tag, spec = DataFolder(release_copy), "tiny-untrained", EncoderSpec(str(tiny_export))
    real = embeddings._write_npy

    def crash_on_second_text(folder_: DataFolder, rel: str, array: np.ndarray) -> None:
        if rel.endswith("val/00001.text.npy"):
            raise OSError("disk full")
        real(folder_, rel, array)

    monkeypatch.setattr(embeddings, "_write_npy", crash_on_second_text)
    with pytest.raises(OSError, match="disk full"):
        embed_release(str(release_copy), "v1", spec, splits=("val",))
    monkeypatch.undo()
    val = release_copy / layout.embed_dir("v1", tag) / "val"
    assert sorted(p.name for p in val.iterdir()) == [  # no temporaries, no stats for the crashed shard
        "00000.image.npy", "00000.parquet", "00000.stats.json", "00000.text.npy", "00001.image.npy"]
    assert embeddings.shard_embeddings_done(folder, "v1", tag, "val", 0)
    assert not embeddings.shard_embeddings_done(folder, "v1", tag, "val", 1)
    with pytest.raises(EmbeddingsMissing, match=r"1 of 2 shards not embedded \(val/00001.tar\).*"
                                                rf"`designclip embed --release v1 --model {tiny_export}`"):
        load_split_vectors(folder, "v1", tag, "val")
    assert embeddings.embedded_splits(folder, "v1", tag) == []

    again = embed_release(str(release_copy), "v1", spec, splits=("val",))
    assert [r["status"] for r in again["rows"]] == ["skipped (done)", "done"]
    assert (again["skipped"], again["embedded_shards"], again["samples"], again["embedded_samples"]) == (1, 1, 12, 2)
    assert embeddings.embedded_splits(folder, "v1", tag) == ["val"]
    got = load_split_vectors(folder, "v1", tag, "val")
    clean = load_split_vectors(DataFolder(embedded_v1["data_root"]), "v1", embedded_v1["tag"], "val")
    assert got.keys == clean.keys and got.meta.column("row").to_pylist() == list(range(12))
    np.testing.assert_allclose(got.image, clean.image, atol=1e-6)
    np.testing.assert_allclose(got.text, clean.text, atol=1e-6)
    third = embed_release(str(release_copy), "v1", spec, splits=("val",))
    assert third["skipped"] == 2 and third["embedded_shards"] == 0 and third["samples"] == 12


def test_an_image_only_model_writes_no_text_vectors(release_copy: Path, tmp_path: Path) -> None:
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_arcface
    from designclip.pipeline.train.model_configs import tiny_model_config

    model, _, _ = build_arcface("designclip-tiny", 4, model_config=tiny_model_config(), embed_dim=32)
    arc = export_model(model.eval(), tmp_path / "arc", "designclip-tiny")
    summary = embed_release(str(release_copy), "v1", EncoderSpec(str(arc)), splits=("test",))
    assert summary["dim"] == 32 and summary["samples"] == 14
    got = load_split_vectors(DataFolder(release_copy), "v1", "arc", "test")
    assert got.text is None and got.image.shape == (14, 32)
    assert not list((release_copy / layout.embed_dir("v1", "arc")).rglob("*.text.npy"))
