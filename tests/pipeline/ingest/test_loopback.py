"""The throttled loopback mirror serves a BDSS folder byte for byte, no faster than asked, and lists its years."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from designclip.pipeline.ingest.listing import list_bdss
from designclip.pipeline.ingest.loopback import serve_folder
from designclip.pipeline.ingest.mirror import build_bdss_mirror
from designclip.pipeline.ingest.sample import sample_patents_dir


def test_a_served_archive_arrives_whole_and_no_faster_than_the_rate(tmp_path: Path) -> None:
    archives = build_bdss_mirror(sample_patents_dir(), tmp_path)
    archive = min(archives, key=lambda p: p.stat().st_size)
    rel = archive.relative_to(tmp_path).as_posix()
    size = archive.stat().st_size
    with serve_folder(tmp_path, bytes_per_s=size / 0.5) as url:
        started = time.monotonic()
        body = requests.get(f"{url}/{rel}", timeout=30).content
        seconds = time.monotonic() - started
        listed = list_bdss(archive_week(archive), archive_week(archive), base_url=url)
    assert body == archive.read_bytes()
    assert seconds >= 0.45, f"{size} bytes at {size / 0.5:.0f} B/s took only {seconds:.2f} s"
    assert [a.name for a in listed] == [archive.name]


def archive_week(path: Path):
    import datetime as dt

    return dt.datetime.strptime(path.stem[1:9], "%Y%m%d").date()
