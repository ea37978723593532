"""The pure release member rules: grouping, member rewrites (typed json, model captions), shard cuts."""

from __future__ import annotations

import json

import pytest
from designclip.pipeline.release.members import (
    SourceSample,
    group_members,
    group_patents,
    release_members,
    starts_new_shard,
    tar_size,
)
from designclip.pipeline.release.options import ReleaseError
from designclip.storage.sample_json import FIELDS, normalise_sample_json
from designclip.storage.shards import sample_members


def _sample(key: str, patent: str, split: str = "train") -> SourceSample:
    meta = {"key": key, "patent_id": patent, "split": split, "title": "Chair ü", "cls": 3, "grant_date": "2021-04-06"}
    return SourceSample(key, sample_members(key, b"\x89PNG fake", meta, "Front view of a chair", 3), "src.tar", 0,
                        "2021-04-06")


def test_members_keep_their_bytes_and_the_json_gets_every_field_typed() -> None:
    s = _sample("USD0915080_f1", "USD0915080", split="train")  # an older shard's json: 6 fields, no defaults
    out = release_members(s, "test")
    for (name, before), (name2, after) in zip(s.members, out, strict=True):
        assert name == name2
        if name.endswith(".json"):
            meta = json.loads(after)
            assert list(meta) == sorted(f.name for f in FIELDS)  # every declared field, sorted as dump_meta writes
            assert meta == normalise_sample_json(json.loads(before)) | {"split": "test", "caption_source": "metadata"}
            assert (meta["title"], meta["cls"], meta["fig_index"], meta["uspc_further"], meta["flag"]) == (
                "Chair ü", 3, -1, "", "")
        else:
            assert after == before
    assert release_members(s, "test") == out
    assert json.loads(dict(release_members(s, "train", fields={"dup_group": "g7"}))["USD0915080_f1.json"])[
        "dup_group"] == "g7"


def test_a_model_caption_replaces_txt_and_a_failed_one_falls_back_to_metadata() -> None:
    s = _sample("USD0915080_f1", "USD0915080", split="train")
    row = {"caption": "A four-legged chair with a slatted back.", "error": None, "model_id": "llava-hf/x",
           "prompt_version": "view-1"}
    out = dict(release_members(s, "train", "llava-x-view-1-abcd", row))
    assert out["USD0915080_f1.txt"] == row["caption"].encode()
    meta = json.loads(out["USD0915080_f1.json"])
    assert meta["caption_source"] == "llava-x-view-1-abcd" and meta["caption_model"] == "llava-hf/x"
    assert out["USD0915080_f1.png"] == dict(s.members)["USD0915080_f1.png"]
    failed = dict(release_members(s, "train", "llava-x-view-1-abcd", {"caption": None, "error": "image_unreadable: x"}))
    assert failed["USD0915080_f1.txt"] == dict(s.members)["USD0915080_f1.txt"]
    meta = json.loads(failed["USD0915080_f1.json"])
    assert meta["caption_source"] == "metadata" and "image_unreadable" in meta["caption_error"]


def test_grouping_members_into_samples_and_patents() -> None:
    members = [m for k, p in (("A_f1", "A"), ("A_f2", "A"), ("B_f1", "B")) for m in _sample(k, p).members]
    samples = list(group_members(members))
    assert [k for k, _ in samples] == ["A_f1", "A_f2", "B_f1"] and all(len(m) == 4 for _, m in samples)
    patents = list(group_patents(_sample(k, p) for k, p in (("A_f1", "A"), ("A_f2", "A"), ("B_f1", "B"))))
    assert [[s.key for s in g] for g in patents] == [["A_f1", "A_f2"], ["B_f1"]]
    with pytest.raises(ReleaseError, match="not a webdataset member"):
        list(group_members([("noext", b"")]))


def test_shards_are_cut_before_a_patent_that_would_overflow() -> None:
    assert tar_size([("a.png", b"x" * 513), ("a.cls", b"1")]) == 512 + 1024 + 512 + 512
    assert not starts_new_shard(0, 0, 50, 10**9, 10, 100)  # a patent bigger than a shard gets its own
    assert starts_new_shard(8, 100, 3, 10, 10, 1000)
    assert starts_new_shard(2, 900, 1, 200, 10, 1000)
    assert not starts_new_shard(7, 100, 3, 10, 10, 1000)
