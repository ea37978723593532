"""Acceptance: the train split loads with webdataset, wids and open_clip_train's own loader (offline)."""

from __future__ import annotations

import importlib.machinery
import json
import math
import socket
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.release import release_root


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test (the tokenizer's vocabulary must come from the wheel)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _train_urls(root: Path) -> tuple[str, int, int]:
    sizes = json.loads((root / "train" / "sizes.json").read_text())
    return f"{root}/train/{{00000..{len(sizes) - 1:05d}}}.tar", len(sizes), sum(sizes.values())


def test_webdataset_decodes_every_train_sample(release_data: Path, release_v1: dict[str, Any]) -> None:
    import webdataset

    root = release_root(release_data, "v1")
    urls, shards, count = _train_urls(root)
    assert shards > 1
    samples = list(webdataset.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(samples) == count == release_v1["splits"]["train"]["samples"]
    for s in samples:
        assert s["png"].size == (512, 512)
        assert isinstance(s["cls"], int) and isinstance(s["txt"], str) and isinstance(s["json"], dict)
        assert s["json"]["split"] == "train" and s["json"]["key"] == s["__key__"] and s["cls"] == s["json"]["cls"]
        assert s["txt"] == s["json"]["caption_metadata"]


def test_wids_indexes_the_train_split(release_data: Path, release_v1: dict[str, Any], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq
    import wids

    monkeypatch.setenv("WIDS_CACHE", str(tmp_path / "wids-cache"))
    root = release_root(release_data, "v1")
    monkeypatch.chdir(tmp_path)  # the index resolves its relative shard urls against its own location
    ds = wids.ShardListDataset(str(root / "train.wids.json"))
    try:
        count = release_v1["splits"]["train"]["samples"]
        assert len(ds) == count
        keys = [r["key"] for r in pq.read_table(root / "manifest.parquet").to_pylist() if r["split"] == "train"]
        for i in (0, count // 2, count - 1):
            sample = ds[i]
            assert sample["__key__"] == keys[i]
            assert {".png", ".json", ".cls", ".txt"} <= set(sample)
            assert sample[".png"].size == (512, 512) and sample[".json"]["split"] == "train"
            assert isinstance(sample[".cls"], int) and isinstance(sample[".txt"], str)
    finally:
        ds.close()
    monkeypatch.chdir(release_data)  # a relative index path resolves against the cwd, then the index's folder
    relative = wids.ShardListDataset("releases/v1/train.wids.json")
    try:
        assert len(relative) == count and relative[count - 1]["__key__"] == keys[-1]
    finally:
        relative.close()


def _pandas_or_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """open_clip_train.data imports pandas at module level for its CSV loader only; the project does not
    depend on pandas, so stand in an empty module when it is missing (the webdataset path never touches it)."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pandas")
        stub.__spec__ = importlib.machinery.ModuleSpec("pandas", None)
        monkeypatch.setitem(sys.modules, "pandas", stub)


def test_open_clip_train_loader_yields_image_and_token_batches(release_data: Path, release_v1: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              no_network: None) -> None:
    import open_clip

    _pandas_or_stub(monkeypatch)
    from open_clip_train.data import get_dataset_size, get_wds_dataset
    from open_clip_train.distributed import init_distributed_device
    from open_clip_train.params import parse_args

    root = release_root(release_data, "v1")
    urls, shards, count = _train_urls(root)
    args = parse_args(["--train-data", urls, "--dataset-type", "webdataset", "--batch-size", "2", "--workers", "0",
                       "--device", "cpu", "--model", "RN50"])
    init_distributed_device(args)  # what open_clip_train.main does: world_size, rank, device
    tokenizer = open_clip.get_tokenizer("RN50")
    assert isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer)  # built-in BPE vocab from the wheel
    preprocess = open_clip.image_transform(224, is_train=True)
    data = get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=tokenizer)

    assert get_dataset_size(urls) == (count, shards)  # read from sizes.json
    assert data.dataloader.num_samples == math.ceil(count / 2) * 2  # open_clip rounds up to whole batches
    batches = list(data.dataloader)
    images, tokens = batches[0]
    assert tuple(images.shape) == (2, 3, 224, 224) and tuple(tokens.shape) == (2, 77)
    assert str(images.dtype) == "torch.float32" and str(tokens.dtype) == "torch.int64"
    assert sum(b[0].shape[0] for b in batches) == data.dataloader.num_samples
