"""The release's spill file: records come back in key order, whole, and a full disk names the folder and the fix."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from designclip.pipeline.release.shards import release_order
from designclip.storage.release_spill import OrderedSpill, SpillError


def test_records_come_back_whole_in_key_order(tmp_path: Path) -> None:
    patents = ["USD0917866", "USD0918440", "USD0923318", "USD0929296", "USD0929297", "USD0930529"]
    png = bytes(range(256)) * 40
    with OrderedSpill(str(tmp_path)) as spill:
        for pid in patents:
            spill.add(release_order(pid), (pid, [("a.png", png), ("a.txt", pid.encode())]))
        assert len(spill) == 6 and spill.bytes > 6 * len(png)
        back = list(spill.drain())
    assert [r[0] for r in back] == sorted(patents, key=release_order) != patents
    assert all(r[1] == [("a.png", png), ("a.txt", r[0].encode())] for r in back)
    assert release_order("USD0917866") == release_order("USD0917866")  # stable across calls and processes
    assert not list(tmp_path.iterdir())  # an anonymous file: nothing is left behind


def test_a_full_disk_names_the_folder_and_tmpdir(tmp_path: Path) -> None:
    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    with OrderedSpill(str(tmp_path)) as spill:
        spill._file.close()
        spill._file = Full()  # type: ignore[assignment]
        with pytest.raises(SpillError, match=f"{tmp_path}: No space left on device after 0 bytes; .*TMPDIR"):
            spill.add(release_order("USD0917866"), b"x")
