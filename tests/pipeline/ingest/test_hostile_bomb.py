"""A zip bomb (a ~1 MB per-patent ZIP whose sheet inflates to 1 GiB) becomes an error row and peak memory stays within
~100 MB of a normal week; members over the caps, declared or actual, are refused the same way."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from designclip.pipeline.ingest.hostile import MemberLimits
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_table

from tests.fixtures.hostile import WEEK, bomb_zip, design_member, good_members, write_members

BOMB = "USD0999201"
_PROBE = textwrap.dedent("""
    import datetime as dt, json, sys
    from designclip.pipeline.ingest.week_archive import ingest_archive
    from designclip.storage.folder import DataFolder
    from designclip.storage.tables import WeekWriter, read_table
    archive, root = sys.argv[1], sys.argv[2]
    week = dt.date(2021, 2, 9)
    folder = DataFolder(root)
    with WeekWriter(folder, week, archive.rsplit("/", 1)[-1]) as sink:
        stats = ingest_archive(archive, archive.rsplit("/", 1)[-1], week, sink)
    errors = [(e["member"], e["reason"]) for e in read_table(folder, "errors").to_pylist()]
    # VmHWM is this process's own peak; ru_maxrss would keep the forking pytest's peak across exec
    peak_kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
    print(json.dumps({"patents": stats.patents, "errors": errors, "peak_mib": peak_kib / 1024}))
""")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return bomb_zip(BOMB)  # deflate level 9 over 1 GiB of zeros: ~1 MB, a few seconds to build


def _probe(archive: Path, root: Path) -> dict:
    """Ingest `archive` in a fresh interpreter and report its rows and its peak resident memory."""
    done = subprocess.run([sys.executable, "-c", _PROBE, str(archive), str(root)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_bomb_is_an_error_row_and_memory_stays_flat(tmp_path: Path, bomb: bytes) -> None:
    assert len(bomb) < 2 << 20
    normal = write_members(tmp_path / "normal" / "I20210209.tar", good_members())
    bombed = write_members(tmp_path / "bomb" / "I20210209.tar", [*good_members(), (design_member(BOMB), bomb)])
    base = _probe(normal, tmp_path / "normal-data")
    hit = _probe(bombed, tmp_path / "bomb-data")
    assert base["patents"] == hit["patents"] == 2 and base["errors"] == []
    assert hit["errors"] == [[design_member(BOMB), "too_large"]]
    assert hit["peak_mib"] - base["peak_mib"] < 100, (base, hit)


def test_a_sheet_that_inflates_past_what_it_declares_is_refused(tmp_path: Path) -> None:
    """A header may lie about the inflated size: the read itself stops at the cap."""
    import io
    import zipfile

    from tests.fixtures.hostile import patent_files
    files = patent_files("USD0999202")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data + (bytes(200_000) if name.endswith("D00002.TIF") else b""))
    limits = MemberLimits(max_sheet_bytes=100_000)
    data = _shrink_declared_size(buf.getvalue(), "D00002.TIF", 50_000)
    archive = write_members(tmp_path / "I20210209.tar", [*good_members(), (design_member("USD0999202"), data)])
    folder = DataFolder(tmp_path / "data")
    with WeekWriter(folder, WEEK, archive.name) as sink:
        stats = ingest_archive(str(archive), archive.name, WEEK, sink, limits=limits)
    errors = read_table(folder, "errors").to_pylist()
    assert [(e["member"], e["reason"]) for e in errors] == [(design_member("USD0999202"), "corrupt_zip")]
    assert stats.patents == 2


def _shrink_declared_size(data: bytes, suffix: str, size: int) -> bytes:
    """Rewrite the inflated size that the central directory declares for the entry ending with `suffix`."""
    import struct
    cd = data.rfind(b"PK\x05\x06")
    start = struct.unpack("<I", data[cd + 16:cd + 20])[0]
    at = data.index(suffix.encode(), start)
    record = data.rfind(b"PK\x01\x02", start, at)
    return data[:record + 24] + struct.pack("<I", size) + data[record + 28:]


@pytest.mark.parametrize(("limits", "reason"), [
    (MemberLimits(max_patent_zip_bytes=20_000), "too_large"),  # the per-patent ZIP in the weekly tar
    (MemberLimits(max_xml_bytes=10_000), "too_large"),  # the grant XML (15 KB)
    (MemberLimits(max_sheet_bytes=12_000), "too_large"),  # sheets of 15 and 18 KB
    (MemberLimits(max_patent_bytes=50_000), "too_large"),  # XML and sheets together: 69 KB
    (MemberLimits(max_entries=3), "too_many_files"),  # 5 files
])
def test_each_cap_refuses_a_real_patent_when_set_below_it(tmp_path: Path, limits: MemberLimits, reason: str) -> None:
    from tests.fixtures.hostile import patent_files, zip_of
    big = (design_member("USD0999203"), zip_of(patent_files("USD0999203")))
    archive = write_members(tmp_path / "I20210209.tar", [big])
    folder = DataFolder(tmp_path / "data")
    with WeekWriter(folder, WEEK, archive.name) as sink:
        stats = ingest_archive(str(archive), archive.name, WEEK, sink, limits=limits)
    errors = read_table(folder, "errors").to_pylist()
    assert [(e["member"], e["reason"]) for e in errors] == [(big[0], reason)] and stats.patents == 0
    assert "cap" in errors[0]["detail"] or "files" in errors[0]["detail"]


def test_the_driver_takes_its_caps_from_the_ingest_options(tmp_path: Path) -> None:
    from designclip.pipeline.ingest.archives import WeeklyArchive
    from designclip.pipeline.ingest.driver import INGEST, IngestOptions
    archive = write_members(tmp_path / "I20210209.tar", good_members())
    folder = DataFolder(tmp_path / "data")
    options = IngestOptions(limits=MemberLimits(max_sheet_bytes=20_000))  # sheets: 18 KB at most, and 34, 46 KB
    result = INGEST.run(folder, WeeklyArchive(WEEK, archive.name, archive.as_uri(), source="local"), options)
    assert result.stats["patents"] == 1 and result.stats["errors_by_reason"] == {"too_large": 1}
