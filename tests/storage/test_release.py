"""Release storage pieces on their own: the streamed manifest and byte-bounded shards."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from designclip.pipeline.release.driver import build_release
from designclip.pipeline.release.members import tar_size
from designclip.storage.folder import DataFolder
from designclip.storage.release import ManifestWriter

from tests.fixtures.release import RATIOS, read_samples, release_root


def test_manifest_parts_are_joined_in_split_order(tmp_path: Path) -> None:
    rows = [{"key": f"k{i}", "split": ("test", "train", "val")[i % 3], "cls": i % 33, "flagged": False}
            for i in range(20)]
    folder = DataFolder(tmp_path / "data")
    with ManifestWriter(folder, "v1", batch_rows=3) as manifest:
        for r in rows:
            manifest.add(r)
        table = pq.read_table(folder.path(manifest.finish()))
        assert manifest.finish().startswith("releases/v1/.work/")  # work under the data root, not /tmp
    assert not folder.exists("releases/v1/.work")  # removed when done
    expected = [r["key"] for split in ("train", "val", "test") for r in rows if r["split"] == split]
    assert table.column("key").to_pylist() == expected and table.num_rows == 20


def test_shards_are_bounded_by_bytes_and_never_split_a_patent(release_data: Path) -> None:
    limit = 400_000
    stats = build_release("v-bytes", str(release_data), ratios=RATIOS, shard_bytes=limit)
    root = release_root(release_data, "v-bytes")
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for tar in sorted((root / split).glob("*.tar")):
            samples = read_samples(tar)
            patents = {k.split("_", 1)[0] for k, _ in samples}
            used = sum(tar_size((f"{k}.{e}", b) for e, b in m.items()) for k, m in samples)
            assert used <= limit or len(patents) == 1, f"{tar} holds {used} bytes"
            for p in patents:
                assert seen.setdefault(p, str(tar)) == str(tar), f"{p} straddles shards"
    assert sum(c["shards"] for c in stats["splits"].values()) > 3
