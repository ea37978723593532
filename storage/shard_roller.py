"""One shard-rolling writer for week shards (render) and release shards: tar + index atomically, stats last.

A group of samples (one patent's views) always lands in one shard; a new shard starts when the group would push the
open one past its sample count or byte limit. Each tar streams to a hidden temporary name and is renamed into place
whole; then the user's `finish` hook writes what goes beside it (index, stats marker) and returns the shard's record.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from designclip.storage.folder import DataFolder
from designclip.storage.webdataset import Members, tar_size

_MTIME = 1_600_000_000  # fixed member mtime: identical inputs give byte-identical shards

Placed = tuple[int, int, int]
"""Where a sample went: (shard number, index in the shard, tar offset of its first header)."""


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = len(data), _MTIME, 0o644, "designclip", "designclip"
    tar.addfile(info, io.BytesIO(data))


def starts_new_shard(count: int, size: int, add_count: int, add_size: int, max_samples: int, max_bytes: int) -> bool:
    """Cut before a patent that would overflow the open shard; a patent bigger than the limits gets its own shard."""
    return count > 0 and (count + add_count > max_samples or size + add_size > max_bytes)


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes (sha256, md5) and counts what passes through to the real file."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha256, self.md5, self.size = target, hashlib.sha256(), hashlib.md5(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.target.write(b)
        self.sha256.update(b)
        self.md5.update(b)
        self.size += len(b)
        return len(b)


class TarShard:
    """One shard being written: members streamed to a hidden temporary file that is renamed only when whole."""

    def __init__(self, folder: DataFolder, rel: str) -> None:
        self.folder, self.rel = folder, rel
        self._ctx = folder.atomic_open(rel, "wb")
        self._out = HashingWriter(self._ctx.__enter__())
        self._tar = tarfile.open(fileobj=self._out, mode="w|", format=tarfile.USTAR_FORMAT)
        self.samples = 0

    def write(self, members: Members) -> int:
        """Append one sample's members; returns the tar offset of its first header."""
        offset = self._tar.offset
        for name, data in members:
            add_member(self._tar, name, data)
        self.samples += 1
        return offset

    def commit(self) -> dict[str, Any]:
        """Finish the tar and rename it into place; returns its size and checksums."""
        self._tar.close()
        self._ctx.__exit__(None, None, None)
        return {"bytes": self._out.size, "sha256": self._out.sha256.hexdigest(), "md5": self._out.md5.hexdigest()}

    def abort(self) -> None:
        err = RuntimeError("shard aborted")
        try:
            self._tar.close()
        finally:
            try:
                self._ctx.__exit__(type(err), err, None)
            except RuntimeError:
                pass


@dataclass
class OpenShard:
    """The shard being filled: its number and path, the tar, the groups in it, the bytes charged to its limit."""

    number: int
    rel: str
    tar: TarShard
    patents: list[str] = field(default_factory=list)
    charged: int = 0
    opened_at: float = field(default_factory=time.perf_counter)

    @property
    def samples(self) -> int:
        return self.tar.samples


Finish = Callable[[OpenShard, dict[str, Any]], dict[str, Any]]
"""Called with a committed shard and its tar's {bytes, sha256, md5}: writes what goes beside it, returns its record."""


class ShardRoller:
    """Groups of samples into numbered shards `rel_of(n)`, cut by count and bytes (as `size_of` measures them)."""

    def __init__(self, folder: DataFolder, rel_of: Callable[[int], str], max_samples: int, max_bytes: int,
                 finish: Finish, size_of: Callable[[Members], int] = tar_size, first_number: int = 0) -> None:
        if max_samples < 1 or max_bytes < 1:
            raise ValueError("shard limits must be positive")
        self.folder, self.rel_of, self.finish, self.size_of = folder, rel_of, finish, size_of
        self.max_samples, self.max_bytes = max_samples, max_bytes
        self.next_number = first_number
        self.closed: list[dict[str, Any]] = []
        self.open: OpenShard | None = None

    def add(self, group: str, samples: Sequence[Members]) -> list[Placed]:
        """Write one group's samples into one shard (closing the open one first if they would overflow it)."""
        size = sum(self.size_of(m) for m in samples)
        shard = self.open
        if shard is not None and starts_new_shard(shard.samples, shard.charged, len(samples), size,
                                                  self.max_samples, self.max_bytes):
            self._close()
        if self.open is None:
            rel = self.rel_of(self.next_number)
            self.open = OpenShard(self.next_number, rel, TarShard(self.folder, rel))
        shard = self.open
        placed = []
        for members in samples:
            index = shard.samples
            placed.append((shard.number, index, shard.tar.write(members)))
        shard.charged += size
        shard.patents.append(group)
        return placed

    def _close(self) -> None:
        shard = self.open
        assert shard is not None
        written = shard.tar.commit()
        self.open = None
        self.next_number += 1
        self.closed.append(self.finish(shard, written))

    def close(self) -> list[dict[str, Any]]:
        """Finish the open shard (if any); returns the records of every shard this roller closed."""
        if self.open is not None:
            self._close()
        return self.closed

    def abort(self) -> None:
        """Drop the open shard's temporary file; closed shards stay."""
        if self.open is not None:
            self.open.tar.abort()
            self.open = None
