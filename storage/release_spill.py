"""A local spill file that takes patents in input order and gives them back in key order (an external sort holding
only the keys in memory), so a release can write each split in hash order of patent id from one pass over the weeks."""

from __future__ import annotations

import errno
import pickle
import tempfile
from collections.abc import Iterator
from typing import IO, Any


class SpillError(OSError):
    """The local spill file could not be written; the message says where and what to do."""


class OrderedSpill:
    """Records appended to one anonymous temporary file (deleted on close, also after a crash), read back sorted."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or tempfile.gettempdir()
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="designclip-release-spill-", dir=self.directory)
        self._index: list[tuple[Any, int, int]] = []
        self.bytes = 0

    def __enter__(self) -> OrderedSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._index)

    def add(self, key: Any, record: Any) -> None:
        """Append one record under a sortable `key` (keys must be distinct for a stable order)."""
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._file.write(data)
        except OSError as err:
            hint = "free space there or point TMPDIR at a disk with room for about one release" \
                if err.errno == errno.ENOSPC else "check that TMPDIR is a writable local folder"
            raise SpillError(err.errno, f"release spill file in {self.directory}: {err.strerror} after "
                             f"{self.bytes} bytes; {hint}") from err
        self._index.append((key, self.bytes, len(data)))
        self.bytes += len(data)

    def drain(self) -> Iterator[Any]:
        """Every record once, in ascending key order (reads by offset: memory holds one record at a time)."""
        self._file.flush()
        for _, offset, size in sorted(self._index, key=lambda entry: entry[0]):
            self._file.seek(offset)
            yield pickle.loads(self._file.read(size))

    def close(self) -> None:
        self._file.close()
        self._index = []
