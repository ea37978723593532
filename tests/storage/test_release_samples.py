"""Reading single views out of release shards by manifest offset: same bytes as the tar, ranged reads, bad keys."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from designclip.storage.folder import DataFolder
from designclip.storage.release_samples import (
    ReleaseCatalog,
    SampleReadError,
    UnknownSample,
    check_key,
    read_sample_members,
)
from designclip.storage.shards import add_member

from tests.fixtures.release import read_samples, release_root


class CountingFolder(DataFolder):
    """A DataFolder that records the byte ranges read, to check a view costs one small read, not the shard."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: list[tuple[str, int | None, int | None]] = []

    def read_bytes(self, rel: str, start: int | None = None, end: int | None = None) -> bytes:
        self.reads.append((rel, start, end))
        return super().read_bytes(rel, start, end)


def _tar_members(root: Path) -> dict[str, dict[str, bytes]]:
    out = {}
    for tar in sorted(root.glob("*/*.tar")):
        out.update(dict(read_samples(tar)))
    return out


def test_every_view_reads_the_same_bytes_as_the_tar_member(release_data: Path, release_v1: dict[str, Any]) -> None:
    root = release_root(release_data, "v1")
    truth = _tar_members(root)
    catalog = ReleaseCatalog(DataFolder(release_data), "v1")
    assert len(catalog) == release_v1["samples"] == len(truth)
    for key, members in truth.items():
        got = catalog.members(key, ("png", "json", "txt", "cls"))
        assert got == {ext: members[ext] for ext in ("png", "json", "txt", "cls")}, key
        assert catalog.png(key) == members["png"]
        meta = json.loads(members["json"])
        assert catalog.title(key) == meta["title"] and catalog.title(key)
        ref = catalog.ref(key)
        assert (ref.patent_id, ref.fig, ref.view, ref.uspc_class) == (meta["patent_id"], meta["fig"], meta["view"],
                                                                     meta["uspc_class"])


def test_a_view_costs_one_ranged_read_of_about_its_size(release_data: Path, release_v1: dict[str, Any]) -> None:
    folder = CountingFolder(str(release_data))
    catalog = ReleaseCatalog(folder, "v1")
    manifest = pq.read_table(release_root(release_data, "v1") / "manifest.parquet").to_pylist()
    row = max(manifest, key=lambda r: r["offset"])  # the last sample of some shard: reads must stop at its end
    png = catalog.png(row["key"])
    assert png.startswith(b"\x89PNG")
    (rel, start, end), = folder.reads
    assert rel == f"releases/v1/{row['shard']}" and start == row["offset"]
    shard_size = (release_root(release_data, "v1") / row["shard"]).stat().st_size
    assert end - start <= max(row["sample_bytes"] + 8192, 64 * 1024) < shard_size


def test_reads_work_on_a_non_local_filesystem(release_data: Path, release_v1: dict[str, Any]) -> None:
    """fsspec's memory:// stands in for s3://: the same ranged reads, no local paths."""
    root = release_root(release_data, "v1")
    remote = DataFolder("memory://search-test/data")
    for path in [root / "manifest.parquet", *sorted(root.glob("*/*.tar"))]:
        with remote.atomic_open(f"releases/v1/{path.relative_to(root).as_posix()}") as f:
            f.write(path.read_bytes())
    assert not remote.is_local
    catalog = ReleaseCatalog(remote, "v1")
    truth = _tar_members(root)
    for key in list(truth)[::7]:
        assert catalog.members(key, ("png", "json")) == {"png": truth[key]["png"], "json": truth[key]["json"]}


def test_a_sample_larger_than_the_first_read_is_read_whole(tmp_path: Path) -> None:
    big = bytes(range(256)) * 1200  # 300 KiB: several times the first 64 KiB read
    with tarfile.open(tmp_path / "00000.tar", "w") as tar:
        add_member(tar, "A_f1.png", b"small")
        add_member(tar, "B_f1.png", big)
        add_member(tar, "B_f1.json", b'{"title": "big"}')
        add_member(tar, "C_f1.png", b"next")
    offset = 512 + 512  # A's header + A's padded data
    got = read_sample_members(DataFolder(tmp_path), "00000.tar", offset, "B_f1", size_hint=0)
    assert got == {"png": big, "json": b'{"title": "big"}'}
    assert read_sample_members(DataFolder(tmp_path), "00000.tar", 0, "A_f1", exts=("png",)) == {"png": b"small"}


def test_wrong_offsets_and_missing_members_are_errors(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        add_member(tar, "A_f1.png", b"a" * 600)
        add_member(tar, "B_f1.png", b"b")
    (tmp_path / "s.tar").write_bytes(buf.getvalue())
    folder = DataFolder(tmp_path)
    with pytest.raises(SampleReadError, match="holds member 'A_f1.png', not sample 'B_f1'"):
        read_sample_members(folder, "s.tar", 0, "B_f1")
    with pytest.raises(SampleReadError, match="no tar header"):
        read_sample_members(folder, "s.tar", 100, "A_f1")
    with pytest.raises(SampleReadError, match="has no json member"):
        read_sample_members(folder, "s.tar", 0, "A_f1")


@pytest.mark.parametrize("key", ["", "../release", "a/b", "x.png", "USD1_f1/../../etc", " USD1", "a" * 200, None])
def test_malformed_keys_are_refused(key: Any) -> None:
    with pytest.raises(UnknownSample):
        check_key(key)


def test_unknown_keys_and_missing_releases(release_data: Path, release_v1: dict[str, Any]) -> None:
    catalog = ReleaseCatalog(DataFolder(release_data), "v1")
    assert "USD0000000_f1" not in catalog
    with pytest.raises(UnknownSample, match="not a sample of release v1"):
        catalog.png("USD0000000_f1")
    with pytest.raises(UnknownSample, match="not a sample key"):
        catalog.png("../manifest")
    with pytest.raises(FileNotFoundError, match="designclip release --version nope"):
        ReleaseCatalog(DataFolder(release_data), "nope")
