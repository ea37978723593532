"""Read a weekly archive as a stream: yield each design patent's XML and TIFF sheets, never extract to disk.

Every per-member problem (a corrupt, encrypted or oversized ZIP, a link named like a patent, an unsafe path) is
yielded as a MemberRejected; only an archive that is not whole or not readable at all raises ArchiveError.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from designclip.pipeline.ingest.hostile import (
    DEFAULT_LIMITS,
    TAR_END_BYTES,
    MemberLimits,
    MemberTooLarge,
    TailReader,
    archive_problem,
    decompressed,
    read_capped,
    tar_end_problem,
    zip_entry_problem,
)

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


def read_patent_zip(member: str, data: bytes, limits: MemberLimits = DEFAULT_LIMITS) -> PatentBundle | MemberRejected:
    """Open one per-patent ZIP; match the XML and sheets by basename, whatever folder they sit in; every entry is
    checked (link, encryption, method, declared size) before it is read, and read no further than its cap."""
    patent_id = patent_id_from_member(member)

    def rejected(reason: str, detail: str) -> MemberRejected:
        return MemberRejected(member, reason, f"{member}: {detail}", patent_id)

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_entries:
            return rejected("too_many_files", f"{len(infos)} files, over the cap of {limits.max_entries} files")
        unsafe = [i.filename for i in infos if is_unsafe_path(i.filename)]
        if unsafe:
            return rejected("unsafe_path", f"refused member path {unsafe[0]!r}")
        xml = next((i for i in infos if GRANT_XML.match(posixpath.basename(i.filename))), None)
        if xml is None:
            return MemberRejected(member, "no_xml", f"{member} holds no grant XML ({len(infos)} files)", patent_id)
        sheets = [i for i in infos if SHEET_TIF.match(posixpath.basename(i.filename))]
        wanted = [(xml, limits.max_xml_bytes), *((s, limits.max_sheet_bytes) for s in sheets)]
        for info, cap in wanted:
            if (problem := zip_entry_problem(info, cap)) is not None:
                return rejected(*problem)
        total = sum(i.file_size for i, _ in wanted)
        if total > limits.max_patent_bytes:
            return rejected("too_large", f"its XML and sheets declare {total} bytes inflated, over the "
                                         f"{limits.max_patent_bytes}-byte cap for one patent")
        bundle = PatentBundle(member, read_capped(zf, xml, limits.max_xml_bytes))
        for info in sheets:
            bundle.images[posixpath.basename(info.filename).upper()] = read_capped(zf, info, limits.max_sheet_bytes)
        return bundle
    except MemberTooLarge as exc:
        return rejected("too_large", str(exc))
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/lzma raise many types for one bad member; none is fatal
        return MemberRejected(member, "corrupt_zip", f"{member} is not a readable ZIP: {type(exc).__name__}: {exc}",
                              patent_id)


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


def _not_a_file(info: tarfile.TarInfo) -> MemberRejected:
    """A link (or device, fifo) named like a patent's ZIP: recorded, never followed."""
    link = info.issym() or info.islnk()
    what = f"a {'symbolic' if info.issym() else 'hard'} link to {info.linkname!r}" if link else "not a regular file"
    return MemberRejected(info.name, "link_member" if link else "not_a_file",
                          f"{info.name} is {what}: links are never followed, so this patent is not read; ask the "
                          "source for an archive with the file itself", patent_id_from_member(info.name))


def _tar_member(tar: tarfile.TarFile, info: tarfile.TarInfo, limits: MemberLimits) -> PatentBundle | MemberRejected:
    if info.size > limits.max_patent_zip_bytes:
        return MemberRejected(info.name, "too_large", f"{info.name} is {info.size} bytes, over the "
                              f"{limits.max_patent_zip_bytes}-byte cap for one patent's ZIP",
                              patent_id_from_member(info.name))
    f = tar.extractfile(info)
    return read_patent_zip(info.name, f.read(info.size) if f else b"", limits)


def iter_weekly_tar(fileobj: BinaryIO, skipped: SkippedMembers,
                    limits: MemberLimits = DEFAULT_LIMITS) -> Iterator[PatentBundle | MemberRejected]:
    """Stream a weekly tar: memory holds one per-patent ZIP at a time; the stream must end with the end-of-archive
    zero blocks, else the tar was cut (at a member boundary, say) and the week is refused."""
    try:
        reader = TailReader(decompressed(fileobj if hasattr(fileobj, "peek") else io.BufferedReader(fileobj)))
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                if info.isdir():
                    continue
                verdict = _classify(info.name, skipped)
                if verdict is True:
                    yield _tar_member(tar, info, limits) if info.isfile() else _not_a_file(info)
                elif verdict is not None:
                    yield verdict
            end = tar.offset
        problem = tar_end_problem(reader.bytes_at(end, TAR_END_BYTES), end)
    except (tarfile.TarError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"the weekly tar is unreadable: {exc}") from exc
    if problem is not None:
        raise ArchiveError(f"the weekly tar is unreadable: {problem}")


def iter_weekly_zip(path: str, skipped: SkippedMembers,
                    limits: MemberLimits = DEFAULT_LIMITS) -> Iterator[PatentBundle | MemberRejected]:
    """Some years ship the week as a ZIP of per-patent ZIPs: same contract as the tar; it must carry its own central
    directory (a cut one can show a stored inner ZIP's directory at its end)."""
    try:
        with open(path, "rb") as f:
            problem = archive_problem(f, "zip")
        if problem is not None:
            raise ArchiveError(f"the weekly zip is unreadable: {problem}")
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                verdict = _classify(info.filename, skipped)
                if verdict is True:
                    yield _zip_member(zf, info, limits)
                elif verdict is not None:
                    yield verdict
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ArchiveError(f"the weekly zip is unreadable: {exc}") from exc


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: MemberLimits) -> PatentBundle | MemberRejected:
    """One per-patent ZIP inside a weekly ZIP: checked, read up to its cap, then opened like a tar member."""
    patent_id = patent_id_from_member(info.filename)
    problem = zip_entry_problem(info, limits.max_patent_zip_bytes)
    if problem is not None:
        return MemberRejected(info.filename, problem[0], problem[1], patent_id)
    try:
        data = read_capped(zf, info, limits.max_patent_zip_bytes)
    except MemberTooLarge as exc:
        return MemberRejected(info.filename, "too_large", str(exc), patent_id)
    except Exception as exc:  # noqa: BLE001 - a bad CRC or stream in one member is that member's error row
        return MemberRejected(info.filename, "corrupt_zip", f"{info.filename} cannot be read from the weekly zip: "
                              f"{type(exc).__name__}: {exc}", patent_id)
    return read_patent_zip(info.filename, data, limits)
