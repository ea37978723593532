"""The one shard-rolling writer: cut by count and bytes, a group never split, tars whole before `finish`, abort."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
from designclip.storage.folder import DataFolder
from designclip.storage.shard_roller import OpenShard, ShardRoller, starts_new_shard
from designclip.storage.webdataset import tar_size


def sample(key: str, size: int) -> list[tuple[str, bytes]]:
    return [(f"{key}.png", b"p" * size), (f"{key}.cls", b"1")]


def roller(folder: DataFolder, finished: list[str], **limits: Any) -> ShardRoller:
    def finish(shard: OpenShard, written: dict[str, Any]) -> dict[str, Any]:
        assert folder.exists(shard.rel) and folder.size(shard.rel) == written["bytes"]  # the tar is in place first
        finished.append(shard.rel)
        return {"number": shard.number, "patents": shard.patents, "samples": shard.samples, **written}

    return ShardRoller(folder, lambda n: f"out/{n:05d}.tar", finish=finish, **limits)


def test_groups_stay_whole_and_shards_cut_by_count_and_bytes(tmp_path: Path) -> None:
    folder, finished = DataFolder(tmp_path), []
    r = roller(folder, finished, max_samples=3, max_bytes=3 * tar_size(sample("X", 10)))
    placed = [r.add("A", [sample("A_1", 10), sample("A_2", 10)]),
              r.add("B", [sample("B_1", 10), sample("B_2", 10)]),  # 4 samples > 3: new shard
              r.add("C", [sample("C_1", 10)]),  # 3 samples, 3 x the bytes: fits exactly
              r.add("D", [sample("D_1", 10)] * 4)]  # bigger than a shard alone: its own shard, kept whole
    records = r.close()
    assert [rec["patents"] for rec in records] == [["A"], ["B", "C"], ["D"]]
    assert [p[0] for group in placed for p in group] == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert [p[1] for group in placed for p in group] == [0, 1, 0, 1, 2, 0, 1, 2, 3]
    assert finished == ["out/00000.tar", "out/00001.tar", "out/00002.tar"]
    with open(tmp_path / "out/00001.tar", "rb") as f:  # offsets point at each sample's first header
        for number, _, offset in placed[2]:
            f.seek(offset)
            assert f.read(100).rstrip(b"\0") == b"C_1.png" and number == 1
    with tarfile.open(tmp_path / "out/00000.tar") as tar:
        assert tar.getnames() == ["A_1.png", "A_1.cls", "A_2.png", "A_2.cls"]


def test_byte_limit_counts_tar_blocks_by_default(tmp_path: Path) -> None:
    folder, finished = DataFolder(tmp_path), []
    one = sample("X", 600)
    r = roller(folder, finished, max_samples=100, max_bytes=2 * tar_size(one))
    for key in ("A", "B", "C"):
        r.add(key, [sample(key, 600)])
    assert [rec["patents"] for rec in r.close()] == [["A", "B"], ["C"]]
    assert not starts_new_shard(0, 0, 50, 10**9, 10, 100)


def test_abort_drops_the_open_shard_and_keeps_closed_ones(tmp_path: Path) -> None:
    folder, finished = DataFolder(tmp_path), []
    r = roller(folder, finished, max_samples=1, max_bytes=10**6)
    r.add("A", [sample("A_1", 5)])
    r.add("B", [sample("B_1", 5)])
    r.abort()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.tar"]
    assert r.close() == [r.closed[0]] and r.next_number == 1


def test_limits_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        roller(DataFolder(tmp_path), [], max_samples=0, max_bytes=10)
