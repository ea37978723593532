"""WeekShardWriter: limits, patents kept whole, atomic tars, resume after the last finished shard."""

from __future__ import annotations

import datetime as dt
import tarfile

import pytest
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.shards import WeekShardWriter, flag_reason, read_index, sample_members

WEEK = dt.date(2021, 1, 5)


def patent(pid: str, views: int, size: int = 100) -> list:
    out = []
    for i in range(views):
        key = f"{pid}_f{i + 1}"
        meta = {"key": key, "patent_id": pid}
        out.append((key, sample_members(key, b"x" * size, meta, "text", 3), {"patent_id": pid, "fig": str(i + 1)}))
    return out


def members(folder: DataFolder, rel: str) -> list[str]:
    with tarfile.open(folder.path(rel)) as tar:
        return tar.getnames()


def test_limits_cut_shards_but_never_split_a_patent(tmp_path):
    folder = DataFolder(tmp_path)
    writer = WeekShardWriter(folder, "px64", WEEK, max_samples=4, max_bytes=10_000)
    for pid, n in (("P1", 3), ("P2", 3), ("P3", 1), ("P4", 6)):
        writer.add_patent(pid, patent(pid, n), [])
    shards = writer.close()
    assert [s["patents"] for s in shards] == [["P1"], ["P2", "P3"], ["P4"]]  # P4 alone exceeds the limit: kept whole
    assert [s["samples"] for s in shards] == [3, 4, 6]
    names = members(folder, layout.shard_tar("px64", WEEK, 1))
    assert names[:4] == ["P2_f1.png", "P2_f1.json", "P2_f1.cls", "P2_f1.txt"]
    index = read_index(folder, layout.shard_index("px64", WEEK, 1)).to_pylist()
    assert [r["key"] for r in index] == ["P2_f1", "P2_f2", "P2_f3", "P3_f1"]
    with open(folder.path(layout.shard_tar("px64", WEEK, 1)), "rb") as f:  # offsets point at each sample's header
        for row in index:
            f.seek(row["offset"])
            assert f.read(100).rstrip(b"\0").decode() == f"{row['key']}.png"


def test_byte_limit_cuts_too(tmp_path):
    writer = WeekShardWriter(DataFolder(tmp_path), "px64", WEEK, max_samples=100, max_bytes=700)
    for pid in ("P1", "P2", "P3"):
        writer.add_patent(pid, patent(pid, 2, size=200), [])
    assert [s["patents"] for s in writer.close()] == [["P1"], ["P2"], ["P3"]]


def test_abort_leaves_no_partial_tar_and_resume_continues(tmp_path):
    folder = DataFolder(tmp_path)
    writer = WeekShardWriter(folder, "px64", WEEK, max_samples=2, max_bytes=10_000)
    writer.add_patent("P1", patent("P1", 2), [])
    writer.add_patent("P2", patent("P2", 2), [{"reason": "sheet_unreadable", "patent_id": "P2"}])  # closes shard 0
    writer.abort()
    shard_dir = layout.shard_dir("px64", WEEK)
    assert folder.list(shard_dir, ".tar") == [layout.shard_tar("px64", WEEK, 0)]
    resumed = WeekShardWriter(folder, "px64", WEEK, max_samples=2, max_bytes=10_000)
    assert resumed.done_patents == {"P1"} and resumed.next_number == 1
    resumed.add_patent("P2", patent("P2", 2), [{"reason": "sheet_unreadable", "patent_id": "P2"}])
    shards = resumed.close()
    assert [s["patents"] for s in shards] == [["P1"], ["P2"]]
    assert shards[1]["failures_by_reason"] == {"sheet_unreadable": 1}


def test_dotted_keys_are_refused():
    with pytest.raises(ValueError, match="contains a dot"):
        sample_members("USD1_f1.1", b"", {}, "", 0)


def test_a_key_too_long_for_a_tar_member_is_refused_with_what_to_do():
    """A ~150-character doc-number made a key the shard tar could not hold ("name is too long" mid-week)."""
    with pytest.raises(ValueError, match="over the 95 that fit.*rerun --force ingest"):
        sample_members("USD" + "9" * 150 + "_f1", b"", {}, "", 0)
    assert len(sample_members("U" * 95, b"", {}, "", 0)) == 4


def test_flags_are_counted_by_kind_in_the_shard_stats(tmp_path):
    samples = patent("P1", 3)
    for (_, _, row), flag in zip(samples, ("the sheet's label reads FIG. 3, expected FIG. 2",
                                           "the sheet's label reads FIG. 12A, expected FIG. 1", ""), strict=True):
        row["flagged"], row["flag"] = bool(flag), flag
    writer = WeekShardWriter(DataFolder(tmp_path), "px64", WEEK)
    writer.add_patent("P1", samples, [])
    (stats,) = writer.close()
    assert stats["flagged"] == 2
    assert stats["flags_by_reason"] == {"the sheet's label reads FIG. n, expected FIG. n": 2}
    assert flag_reason("FIG. label not read; placed by FIG. order") == "FIG. label not read; placed by FIG. order"
