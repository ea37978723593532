"""Guards against hostile or broken archives: size caps on what a member may inflate to, the entries a per-patent ZIP
may hold, and proof that a weekly archive is whole (a tar's end-of-archive blocks, a ZIP's own central directory)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import stat
import tarfile
import zipfile
from collections import deque
from dataclasses import dataclass
from typing import IO, Any

MIB = 1 << 20
TAR_END_BYTES = 2 * tarfile.BLOCKSIZE
"""A tar ends with two zero blocks; a file that stops before them was cut (at a member boundary, say)."""
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                    zipfile.ZIP_LZMA: "lzma"}
_METHOD_NAMES = {9: "deflate64", 99: "AES", 93: "zstandard", 95: "xz", 98: "ppmd", 12: "bzip2", 14: "lzma"}


@dataclass(frozen=True)
class MemberLimits:
    """Caps on one member (real sheets and grant XMLs are well under 1 MB): a member declaring or inflating past them
    becomes an error row instead of filling memory. Raise them in IngestOptions(limits=...) if real data needs it."""

    max_patent_zip_bytes: int = 64 * MIB  # one per-patent ZIP as stored in the weekly archive
    max_xml_bytes: int = 8 * MIB  # one grant XML, inflated (also one document of an ipg file)
    max_sheet_bytes: int = 8 * MIB  # one TIFF sheet, inflated
    max_patent_bytes: int = 64 * MIB  # the XML and every sheet of one patent together, inflated
    max_entries: int = 1000  # files in one per-patent ZIP


DEFAULT_LIMITS = MemberLimits()


class MemberTooLarge(ValueError):
    """A member inflated past its cap although it declared less (its header lies)."""


def zip_entry_problem(info: zipfile.ZipInfo, cap: int) -> tuple[str, str] | None:
    """(reason, why) when a ZIP entry cannot be read safely: a link, encrypted, an unknown method or over its cap."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "link_member", f"{name} is a symbolic link, not a file: links are never followed"
    if info.flag_bits & 0x1:
        return "encrypted_member", f"{name} is encrypted: grant archives never are, so it cannot be read"
    if info.compress_type not in READABLE_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "unknown")
        return ("unsupported_compression", f"{name} uses ZIP compression method {info.compress_type} ({method}), "
                f"which cannot be read here (readable: {', '.join(READABLE_METHODS.values())})")
    if info.file_size > cap:
        return "too_large", f"{name} declares {info.file_size} bytes inflated, over the {cap}-byte cap"
    return None


def read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Inflate one entry, never holding more than `cap` + 1 bytes of it (a declared size can lie)."""
    with zf.open(info) as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise MemberTooLarge(f"{info.filename} inflates past the {cap}-byte cap (it declares {info.file_size})")
    return data


# -- a weekly tar read as a stream ------------------------------------------------------------------------------------


class TailReader:
    """Reads through a stream, keeping the last bytes handed out, so a tar's end can be checked after a stream read."""

    def __init__(self, source: Any, keep: int = 1 << 16) -> None:
        self.source, self.keep = source, keep
        self.chunks: deque[tuple[int, bytes]] = deque()  # (stream offset, bytes), the newest last
        self.held = self.pos = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self._remember(data)
        return data

    def _remember(self, data: bytes) -> None:
        if data:
            self.chunks.append((self.pos, data))
            self.pos += len(data)
            self.held += len(data)
        while self.chunks and self.held - len(self.chunks[0][1]) >= self.keep:
            self.held -= len(self.chunks.popleft()[1])

    def bytes_at(self, start: int, count: int) -> bytes:
        """The stream's bytes [start, start + count), reading ahead when needed; fewer where the stream ends."""
        while self.pos < start + count and (data := self.source.read(max(start + count - self.pos, 1 << 16))):
            self._remember(data)
        if self.chunks and start < self.chunks[0][0]:
            raise ValueError(f"byte {start} is no longer held (the tail starts at {self.chunks[0][0]})")
        first = self.chunks[0][0] if self.chunks else self.pos
        return b"".join(c for _, c in self.chunks)[start - first:start - first + count]


def decompressed(f: Any) -> Any:
    """A gzip/bzip2/xz-compressed tar is read through its decompressor; a plain one as it is."""
    head = f.peek(6)[:6] if hasattr(f, "peek") else b""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=f)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(f)
    if head.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(f)
    return f


def tar_end_problem(block: bytes, offset: int) -> str | None:
    """Why the bytes found where a tar's members stop are not its end-of-archive blocks; None when they are."""
    if len(block) == TAR_END_BYTES and block.count(0) == TAR_END_BYTES:
        return None
    if block.count(0) == len(block):
        return (f"it stops at byte {offset + len(block)} without the two zero blocks that end a tar: the file was cut "
                "short (at a member boundary, say), so members after it are missing")
    return f"a damaged header at byte {offset} ends it early, so the members after it would be lost"


# -- whole-archive checks for a file that can seek (downloads, adopted files) -----------------------------------------


def archive_problem(f: IO[bytes], kind: str) -> str | None:
    """Why a weekly archive file is not whole (None when it is): a tar must reach its end-of-archive blocks, a ZIP must
    carry its own central directory. Reads headers only, seeking over member data."""
    f.seek(0)
    try:
        return _zip_problem(f) if kind == "zip" else _tar_problem(f)
    finally:
        f.seek(0)


def _tar_problem(f: IO[bytes]) -> str | None:
    try:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            members = sum(1 for _ in tar)
            end = tar.offset
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        return f"it is not a readable tar ({exc})"
    f.seek(end)
    problem = tar_end_problem(f.read(TAR_END_BYTES), end)
    return None if problem is None else f"{problem} (after {members} members)"


def _zip_problem(f: IO[bytes]) -> str | None:
    if f.read(4) != b"PK\x03\x04":
        return "it does not start with a ZIP local header"
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as zf:
            first = min((i.header_offset for i in zf.infolist()), default=None)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        return f"its central directory is missing or unreadable ({exc}): the file was cut short or is not a ZIP"
    if first != 0:
        return ("the central directory found at its end belongs to a ZIP stored inside it, not to the archive: the "
                "file was cut short")
    return None
