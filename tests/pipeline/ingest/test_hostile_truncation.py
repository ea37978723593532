"""A weekly archive cut exactly at a member boundary is refused and recorded, never ingested as a shorter week: a tar
must reach its end-of-archive zero blocks, a ZIP must carry its own central directory, local or downloaded, with or
without a Content-Length; a rerun with the whole archive succeeds."""

from __future__ import annotations

import contextlib
import datetime as dt
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from designclip.pipeline.ingest.archive import ArchiveError
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.download import DownloadError, DownloadOptions, download_archive
from designclip.pipeline.ingest.driver import INGEST
from designclip.pipeline.ingest.loopback import serve_handler
from designclip.pipeline.ingest.mirror import build_patent_zip, build_weekly_tar, group_by_week
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_table

from tests.conftest import SAMPLE

WEEK = dt.date(2021, 3, 16)  # the sample week with 4 patents
FAST = DownloadOptions(max_attempts=1, timeout_s=5)


def _whole_tar(tmp_path: Path) -> bytes:
    return build_weekly_tar(WEEK, group_by_week(SAMPLE)[WEEK], tmp_path / "whole" / "I20210316.tar").read_bytes()


def _whole_zip(tmp_path: Path) -> bytes:
    """The same week as a weekly ZIP of stored per-patent ZIPs (a cut one shows an inner ZIP's directory at its end)."""
    out = tmp_path / "whole" / "I20210316.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for folder in group_by_week(SAMPLE)[WEEK]:
            zf.writestr(f"I20210316/DESIGN/{folder.name}.ZIP", build_patent_zip(folder))
    return out.read_bytes()


def tar_boundaries(data: bytes) -> list[int]:
    """Every offset where a member's header starts after the first, and where the last member's data ends."""
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    last = members[-1]
    return [m.offset for m in members[1:]] + [last.offset_data + -(-last.size // 512) * 512]


def zip_boundaries(data: bytes) -> list[int]:
    """Every member's local header after the first, and the start of the central directory."""
    import io
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        starts = sorted(i.header_offset for i in zf.infolist())
        return starts[1:] + [zf.start_dir]


def _run(folder: DataFolder, path: Path) -> WeeklyArchive:
    archive = WeeklyArchive(week=WEEK, name=path.name, url=path.as_uri(), source="local")
    INGEST.run(folder, archive)
    return archive


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_an_archive_cut_at_every_member_boundary_is_refused_recorded_then_ingested_whole(tmp_path: Path,
                                                                                         kind: str) -> None:
    whole = _whole_tar(tmp_path) if kind == "tar" else _whole_zip(tmp_path)
    cuts = tar_boundaries(whole) if kind == "tar" else zip_boundaries(whole)
    assert len(cuts) == 4
    folder, path = DataFolder(tmp_path / "data"), tmp_path / f"I20210316.{kind}"
    for cut in cuts:
        path.write_bytes(whole[:cut])
        with pytest.raises(ArchiveError, match="cut short"):
            _run(folder, path)
        failure = folder.read_json(layout.failure_record("ingest", WEEK))
        assert failure["archive"] == path.name and "cut short" in failure["error"], cut
        assert not folder.exists(layout.stats_marker("ingest", WEEK)), f"cut at {cut} was taken as a whole week"
        assert folder.list("patents", ".parquet") == [], "a refused week leaves no tables"
    path.write_bytes(whole)
    _run(folder, path)
    assert len(read_table(folder, "patents")) == 4
    assert not folder.exists(layout.failure_record("ingest", WEEK)), "the whole archive clears the failure"


def test_a_cut_download_already_in_raw_is_moved_aside_and_recorded(tmp_path: Path) -> None:
    """An archive downloaded before the check existed (manifest written) is refused at ingest and fetched again."""
    whole = _whole_tar(tmp_path)
    folder = DataFolder(tmp_path / "data")
    name = "I20210316.tar"
    raw = layout.raw_archive(WEEK, name)
    folder.makedirs(raw.rpartition("/")[0])
    Path(folder.path(raw)).write_bytes(whole[:tar_boundaries(whole)[-1]])
    folder.write_json(layout.raw_manifest(WEEK, name), {"name": name, "url": "https://x/" + name, "source": "bdss"})
    archive = WeeklyArchive(week=WEEK, name=name, url="https://x/" + name)
    with pytest.raises(ArchiveError, match="downloaded again"):
        INGEST.run(folder, archive)
    assert folder.exists(raw + ".corrupt") and not folder.exists(layout.raw_manifest(WEEK, name))
    assert "cut short" in folder.read_json(layout.failure_record("ingest", WEEK))["error"]


# -- downloads ---------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_without_length(body: list[bytes]) -> Iterator[str]:
    """A loopback server that answers every GET with `body[0]` and no Content-Length (the body ends at close)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.end_headers()
            self.wfile.write(body[0])

        def log_message(self, *args: object) -> None:
            pass

    with serve_handler(Handler) as url:
        yield url


def test_a_download_without_content_length_is_unverified_until_the_tar_end_is_there(tmp_path: Path) -> None:
    whole = _whole_tar(tmp_path)
    body = [whole[:tar_boundaries(whole)[1]]]
    folder = DataFolder(tmp_path / "data")
    with serve_without_length(body) as base:
        archive = WeeklyArchive(WEEK, "I20210316.tar", f"{base}/I20210316.tar")
        with pytest.raises(DownloadError, match="cut short"):
            download_archive(archive, folder, options=FAST)
        assert not folder.exists(layout.raw_archive(WEEK, archive.name))
        assert not folder.exists(layout.raw_manifest(WEEK, archive.name))
        body[0] = whole
        result = download_archive(archive, folder, options=FAST)
    assert result.size == len(whole) and not result.skipped


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_file_url_cut_at_a_member_boundary_is_refused(tmp_path: Path, kind: str) -> None:
    whole = _whole_tar(tmp_path) if kind == "tar" else _whole_zip(tmp_path)
    cut = (tar_boundaries(whole) if kind == "tar" else zip_boundaries(whole))[0]
    src = tmp_path / "mirror" / f"I20210316.{kind}"
    src.parent.mkdir()
    src.write_bytes(whole[:cut])
    folder = DataFolder(tmp_path / "data")
    archive = WeeklyArchive(WEEK, src.name, src.as_uri())
    with pytest.raises(DownloadError, match="cut short"):
        download_archive(archive, folder, options=FAST)
    assert not folder.exists(layout.raw_archive(WEEK, src.name))


def test_a_cut_final_file_without_manifest_is_not_adopted(tmp_path: Path) -> None:
    whole = _whole_tar(tmp_path)
    src = tmp_path / "mirror" / "I20210316.tar"
    src.parent.mkdir()
    src.write_bytes(whole)
    folder = DataFolder(tmp_path / "data")
    final = layout.raw_archive(WEEK, src.name)
    folder.makedirs(final.rpartition("/")[0])
    Path(folder.path(final)).write_bytes(whole[:tar_boundaries(whole)[2]])
    result = download_archive(WeeklyArchive(WEEK, src.name, src.as_uri()), folder, options=FAST)
    assert not result.skipped and result.size == len(whole)


def test_a_compressed_tar_is_checked_the_same_way(tmp_path: Path) -> None:
    """The end check reads the decompressed stream, so a gzip-compressed tar cut at a member is refused too."""
    import gzip

    from designclip.pipeline.ingest.week_archive import ingest_archive
    from designclip.storage.tables import WeekWriter
    whole = _whole_tar(tmp_path)
    for data, ok in ((whole, True), (whole[:tar_boundaries(whole)[-1]], False)):
        path = tmp_path / "I20210316.tar"
        path.write_bytes(gzip.compress(data, mtime=0))
        folder = DataFolder(tmp_path / f"data-{ok}")
        with contextlib.ExitStack() as stack:
            if not ok:
                stack.enter_context(pytest.raises(ArchiveError, match="cut short"))
            with WeekWriter(folder, WEEK, path.name) as sink:
                stats = ingest_archive(str(path), path.name, WEEK, sink)
        assert not ok or stats.patents == 4
