"""Read a weekly archive as a stream: yield each design patent's XML and TIFF sheets, never extract to disk."""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

DESIGN_ZIP = re.compile(r"^USD\d+-\d{8}\.ZIP$", re.IGNORECASE)
GRANT_XML = re.compile(r"^US[A-Z]*\d+-\d{8}\.XML$", re.IGNORECASE)
SHEET_TIF = re.compile(r"^US[A-Z]*\d+-\d{8}-D\d+\.TIFF?$", re.IGNORECASE)
IPG_NAME = re.compile(r"^ipg\d{6}\.(?:xml|zip)$", re.IGNORECASE)


class ArchiveError(Exception):
    """The weekly archive itself is unreadable (truncated, not a tar/zip): the whole week fails."""


@dataclass
class PatentBundle:
    """One per-patent ZIP's content: the grant XML and its TIFF sheets by basename."""

    member: str
    xml: bytes
    images: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberRejected:
    """A member that could not be used, with a short reason code and a sentence for people."""

    member: str
    reason: str
    detail: str
    patent_id: str | None = None


@dataclass
class SkippedMembers:
    """Counts of members that are not design patents (UTIL, PLANT, REISSUE, SUPP...), by top folder."""

    by_folder: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        parts = [p for p in name.split("/") if p]
        key = next((p for p in parts[1:-1]), parts[0] if parts else "?") if len(parts) > 1 else "(root)"
        if len(parts) > 1 and parts[0].upper().endswith("-SUPP"):
            key = "SUPP"
        self.by_folder[key] = self.by_folder.get(key, 0) + 1


def is_unsafe_path(name: str) -> bool:
    """Absolute paths, drive letters, backslashes and '..' would escape any output folder (zip-slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        return True
    return ".." in name.split("/")


def patent_id_from_member(name: str) -> str | None:
    m = re.match(r"^(US[A-Z]*\d+)-", posixpath.basename(name), re.IGNORECASE)
    return m.group(1).upper() if m else None


def read_patent_zip(member: str, data: bytes) -> PatentBundle | MemberRejected:
    """Open one per-patent ZIP; match the XML and sheets by basename, whatever folder they sit in."""
    patent_id = patent_id_from_member(member)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        unsafe = [n for n in names if is_unsafe_path(n)]
        if unsafe:
            detail = f"refused member path {unsafe[0]!r} inside {member}"
            return MemberRejected(member, "unsafe_path", detail, patent_id)
        xml_names = [n for n in names if GRANT_XML.match(posixpath.basename(n))]
        if not xml_names:
            return MemberRejected(member, "no_xml", f"{member} holds no grant XML ({len(names)} files)", patent_id)
        bundle = PatentBundle(member, zf.read(xml_names[0]))
        for n in names:
            if SHEET_TIF.match(posixpath.basename(n)):
                bundle.images[posixpath.basename(n).upper()] = zf.read(n)
        return bundle
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        return MemberRejected(member, "corrupt_zip", f"{member} is not a readable ZIP: {exc}", patent_id)


def _is_design_member(name: str) -> bool:
    parts = name.split("/")
    return DESIGN_ZIP.match(parts[-1]) is not None and any(p.upper() == "DESIGN" for p in parts[:-1])


def _classify(name: str, skipped: SkippedMembers) -> MemberRejected | None | bool:
    """True: a design ZIP to read; MemberRejected: refuse it; None: not ours, counted as skipped."""
    if is_unsafe_path(name):
        return MemberRejected(name, "unsafe_path", f"refused member path {name!r}: it escapes the archive folder",
                              patent_id_from_member(name))
    if _is_design_member(name):
        return True
    skipped.add(name)
    return None


def iter_weekly_tar(fileobj: BinaryIO, skipped: SkippedMembers) -> Iterator[PatentBundle | MemberRejected]:
    """Stream a weekly tar (`r|*`): memory holds one per-patent ZIP at a time."""
    start = fileobj.tell() if fileobj.seekable() else None
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                verdict = _classify(info.name, skipped)
                if verdict is True:
                    f = tar.extractfile(info)
                    yield read_patent_zip(info.name, f.read() if f else b"")
                elif verdict is not None:
                    yield verdict
            _check_tar_end(fileobj, start, tar)
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"the weekly tar is unreadable: {exc}") from exc


def _check_tar_end(fileobj: BinaryIO, start: int | None, tar: tarfile.TarFile) -> None:
    """tarfile stops silently at a garbled header after the first: demand the zero-block end (or the file's end)."""
    if start is None or getattr(tar.fileobj, "comptype", "tar") != "tar":
        return  # a pipe or a compressed stream: the position of the stop cannot be re-read
    fileobj.seek(start + tar.offset)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if block.count(0) != len(block):
        raise ArchiveError(f"the weekly tar is unreadable: a damaged header at byte {tar.offset} ends it early, "
                           "so the patents after it would be lost")


def iter_weekly_zip(path: str, skipped: SkippedMembers) -> Iterator[PatentBundle | MemberRejected]:
    """Some years ship the week as a ZIP of per-patent ZIPs: same contract as the tar."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                verdict = _classify(info.filename, skipped)
                if verdict is True:
                    yield read_patent_zip(info.filename, zf.read(info))
                elif verdict is not None:
                    yield verdict
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ArchiveError(f"the weekly zip is unreadable: {exc}") from exc
