"""Acceptance: a real sample release loads with Hugging Face `datasets`, from its shards and from its folder."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from designclip.pipeline.common.splits import SPLITS
from designclip.storage.sample_json import (
    BOOL,
    FIELDS,
    INT,
    INT_LIST,
    JOINED,
    STRING,
    STRING_LIST,
    card_features,
    hf_features,
)
from PIL import Image

from tests.fixtures.release import read_samples, release_root

_PYTHON = {STRING: str, JOINED: str, INT: int, BOOL: bool, INT_LIST: list, STRING_LIST: list}


@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HF home and cache, offline flags set, and any network connection failing the test."""
    home = tmp_path / "hf-home"
    for name, value in (("HF_HOME", str(home)), ("HF_DATASETS_CACHE", str(home / "datasets")),
                        ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)  # read at import: the import may be older
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tmp_path / "hf-cache"


def _shards(root: Path) -> dict[str, list[str]]:
    return {s: sorted(str(p) for p in (root / s).glob("*.tar")) for s in SPLITS}


def _truth(root: Path) -> dict[str, dict[str, bytes]]:
    """Every sample's members as the tar holds them, decoded by hand: key -> {ext: bytes}."""
    out: dict[str, dict[str, bytes]] = {}
    for tar in sorted(root.glob("*/*.tar")):
        out.update(dict(read_samples(tar)))
    return out


def _check_split(ds: Any, split: str, root: Path, truth: dict[str, dict[str, bytes]]) -> None:
    """The split holds the manifest's keys in release order, and every field of every sample equals the tar's."""
    from datasets import Image as HFImage

    keys = [r["key"] for r in pq.read_table(root / "manifest.parquet", columns=["key", "split"]).to_pylist()
            if r["split"] == split]
    assert ds["__key__"] == keys and len(keys) > 0
    raw = ds.cast_column("png", HFImage(decode=False))
    for i, key in enumerate(keys):
        members, row = truth[key], raw[i]
        assert row["png"]["bytes"] == members["png"], key
        assert row["json"] == json.loads(members["json"]), key  # every json field, typed as in the shard
        assert row["cls"] == int(members["cls"]) and row["txt"] == members["txt"].decode()
        assert row["__url__"].endswith(f"{split}/{Path(row['__url__']).name}")
    first = ds[0]
    with Image.open(io.BytesIO(truth[keys[0]]["png"])) as png:
        assert first["png"].size == png.size == (512, 512) and first["png"].tobytes() == png.tobytes()


def test_every_json_field_has_one_type_in_every_sample(release_data: Path, release_v1: dict[str, Any]) -> None:
    truth = _truth(release_root(release_data, "v1"))
    assert len(truth) == release_v1["samples"] == 58
    for key, members in truth.items():
        meta = json.loads(members["json"])
        assert list(meta) == sorted(f.name for f in FIELDS), key
        for f in FIELDS:
            value = meta[f.name]
            assert type(value) is _PYTHON[f.kind], (key, f.name, value)
            if f.kind in (INT_LIST, STRING_LIST):
                assert all(type(v) is _PYTHON[STRING if f.kind == STRING_LIST else INT] for v in value), (key, f.name)
        assert meta["caption_source"] == "metadata" and meta["split"] in SPLITS
    further = {json.loads(m["json"])["patent_id"]: json.loads(m["json"])["uspc_further"] for m in truth.values()}
    assert further["USD0929296"] == "" and further["USD0915080"] == "D5/57"  # grant XML: " D5 57"


def test_the_card_header_names_every_split_and_types_every_field(release_data: Path,
                                                                 release_v1: dict[str, Any]) -> None:
    root = release_root(release_data, "v1")
    text = (root / "README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n", 2)[1])
    (config,) = header["configs"]
    assert config["config_name"] == "v1" and config["default"] is True
    assert config["data_files"] == [{"split": s, "path": f"{s}/*.tar"} for s in SPLITS]
    info = header["dataset_info"]
    assert info["config_name"] == "v1" and info["features"] == card_features()
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {
        s: release_v1["splits"][s]["samples"] for s in SPLITS}
    assert "| label_box | list[int] |" in text and "load_dataset(" in text


def test_load_dataset_webdataset_from_the_shard_files(release_data: Path, release_v1: dict[str, Any],
                                                      hf_offline: Path) -> None:
    """The call from the issue, exactly: no features given, `datasets` infers them from the samples."""
    import datasets

    root = release_root(release_data, "v1")
    ds = datasets.load_dataset("webdataset", data_files=_shards(root), cache_dir=str(hf_offline))
    assert set(ds) == set(SPLITS)
    truth = _truth(root)
    for split in SPLITS:
        assert ds[split].num_rows == release_v1["splits"][split]["samples"] > 0
        _check_split(ds[split], split, root, truth)


def test_load_dataset_from_the_release_folder_uses_the_card(release_data: Path, release_v1: dict[str, Any],
                                                            hf_offline: Path) -> None:
    import datasets

    root = release_root(release_data, "v1")
    ds = datasets.load_dataset(str(root), cache_dir=str(hf_offline))
    assert set(ds) == set(SPLITS)
    truth = _truth(root)
    for split in SPLITS:
        assert ds[split].features == hf_features()  # the card's types, not guessed from the first samples
        assert ds[split].num_rows == release_v1["splits"][split]["samples"]
        _check_split(ds[split], split, root, truth)
    # the card's second recipe: shard files plus the card's features
    features = datasets.load_dataset_builder(str(root), cache_dir=str(hf_offline)).info.features
    assert features == hf_features()
    test = datasets.load_dataset("webdataset", data_files={"test": _shards(root)["test"]}, features=features,
                                 cache_dir=str(hf_offline), split="test")
    _check_split(test, "test", root, truth)


def test_a_split_without_shards_is_left_out_of_the_header() -> None:
    from designclip.pipeline.release.card import card_front_matter

    summary = {"splits": {"train": {"samples": 7}, "val": {"samples": 0}, "test": {"samples": 0}}}
    lines = card_front_matter("2025.1", summary, {"train": "train"})
    assert lines[0] == lines[2] == "---" and lines[3] == ""
    header = yaml.safe_load(lines[1])
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "train/*.tar"}]
    assert header["configs"][0]["config_name"] == header["dataset_info"]["config_name"] == "2025.1"
    assert header["dataset_info"]["splits"] == [{"name": "train", "num_examples": 7}]
