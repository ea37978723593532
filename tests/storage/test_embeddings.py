"""Embedding files of a release: a tag never mixes two models, float16 loads as float32, missing, stale and damaged
vectors say what to run, and an unfinished release is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from designclip.pipeline.embed.driver import embed_release
from designclip.pipeline.embed.encoder import EncoderSpec
from designclip.storage import embeddings, layout
from designclip.storage.embeddings import EmbeddingsConflict, EmbeddingsMissing, load_split_vectors
from designclip.storage.folder import DataFolder


def test_a_tag_reused_for_other_weights_is_refused(release_copy: Path, tiny_export: Path, tmp_path: Path) -> None:
    import torch
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_design_clip
    from designclip.pipeline.train.model_configs import tiny_model_config

    torch.manual_seed(1)
    model, _, _, _ = build_design_clip("designclip-tiny", model_config=tiny_model_config())
    other = export_model(model, tmp_path / "elsewhere" / "tiny-untrained", "designclip-tiny")
    folder = DataFolder(release_copy)
    embed_release(str(release_copy), "v1", EncoderSpec(str(tiny_export)), splits=("test",))
    record = embeddings.read_encoder_record(folder, "v1", "tiny-untrained")
    with pytest.raises(EmbeddingsConflict, match="already holds vectors of another model.*stale"):
        embed_release(str(release_copy), "v1", EncoderSpec(str(other)), splits=("test",))
    assert embeddings.read_encoder_record(folder, "v1", "tiny-untrained") == record
    # the same weights by their run name are the same model: accepted, nothing redone
    (release_copy / "models").mkdir()
    (release_copy / "models" / "tiny-untrained").symlink_to(tiny_export, target_is_directory=True)
    same = embed_release(str(release_copy), "v1", EncoderSpec("tiny-untrained"), splits=("test",))
    assert same["model_tag"] == "tiny-untrained" and same["skipped"] == 2
    # the other weights under a tag of their own
    own = embed_release(str(release_copy), "v1", EncoderSpec(str(other)), splits=("test",), tag="tiny-seed1")
    assert own["model_tag"] == "tiny-seed1" and own["embedded_shards"] == 2
    a = load_split_vectors(folder, "v1", "tiny-untrained", "test")
    b = load_split_vectors(folder, "v1", "tiny-seed1", "test")
    assert a.keys == b.keys and not np.allclose(a.image, b.image)


def test_float16_storage_loads_as_float32(embedded_v1: dict, release_copy: Path, tiny_export: Path) -> None:
    summary = embed_release(str(release_copy), "v1", EncoderSpec(str(tiny_export)), splits=("test", "val"),
                            batch_size=3, fp16=True)
    assert summary["dtypes"] == ["float16"] and summary["samples"] == 26
    folder, tag = DataFolder(release_copy), "tiny-untrained"
    raw = np.load(release_copy / layout.embed_file("v1", tag, "test", 0, "image"))
    assert raw.dtype == np.float16 and raw.shape == (7, 64)
    assert embeddings.read_shard_stats(folder, "v1", tag, "test", 0)["dtype"] == "float16"
    assert embeddings.read_shard_stats(folder, "v1", tag, "test", 0)["batch_size"] == 3
    for split in ("test", "val"):
        got = load_split_vectors(folder, "v1", tag, split)
        clean = load_split_vectors(DataFolder(embedded_v1["data_root"]), "v1", embedded_v1["tag"], split)
        assert got.image.dtype == got.text.dtype == np.float32
        np.testing.assert_allclose(got.image, clean.image, atol=2e-3)  # batches of 3 vs 64, then float16
        np.testing.assert_allclose(got.text, clean.text, atol=2e-3)


def test_missing_and_stale_embeddings_say_what_to_run(release_copy: Path, tiny_export: Path) -> None:
    folder, tag = DataFolder(release_copy), "tiny-untrained"
    with pytest.raises(EmbeddingsMissing, match=r"no embeddings by 'tiny-untrained'.*designclip embed --release v1"):
        load_split_vectors(folder, "v1", tag, "test")
    embed_release(str(release_copy), "v1", EncoderSpec(str(tiny_export)), splits=("test",))
    assert embeddings.embedded_splits(folder, "v1", tag) == ["test"]
    with pytest.raises(EmbeddingsMissing, match=r"2 of 2 shards not embedded \(val/00000.tar, val/00001.tar\)"):
        load_split_vectors(folder, "v1", tag, "val")
    with pytest.raises(EmbeddingsMissing, match="no split 'holdout'"):
        load_split_vectors(folder, "v1", tag, "holdout")

    # the release rebuilt from other inputs: the old vectors are stale, and embedding again redoes them
    marker = release_copy / layout.release_marker("v1")
    data = json.loads(marker.read_text())
    data["fingerprint"]["rebuilt"] = True
    marker.write_text(json.dumps(data))
    with pytest.raises(EmbeddingsMissing, match=r"2 embedded from an older build of the release"):
        load_split_vectors(folder, "v1", tag, "test")
    assert embeddings.embedded_splits(folder, "v1", tag) == []
    again = embed_release(str(release_copy), "v1", EncoderSpec(str(tiny_export)), splits=("test",))
    assert again["embedded_shards"] == 2 and again["skipped"] == 0
    assert len(load_split_vectors(folder, "v1", tag, "test")) == 14

    # a damaged shard file (rows that no longer match the release) is named, never half-read
    np.save(release_copy / layout.embed_file("v1", tag, "test", 1, "image"), np.zeros((3, 64), np.float32))
    with pytest.raises(EmbeddingsMissing, match=r"test/00001.tar embeddings by tiny-untrained do not match"):
        load_split_vectors(folder, "v1", tag, "test")


def test_an_unfinished_release_is_refused(release_copy: Path, tiny_export: Path) -> None:
    from designclip.storage.embeddings import ReleaseNotReady

    (release_copy / layout.release_marker("v1")).unlink()
    with pytest.raises(ReleaseNotReady, match="run `designclip release --version v1` first"):
        embed_release(str(release_copy), "v1", EncoderSpec(str(tiny_export)))
