"""One folder abstraction over fsspec, so a local path and `s3://bucket/prefix` behave the same."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR})


class DataRootError(RuntimeError):
    """The data root cannot take a write (full, read-only, not a folder): the message names the path and the fix."""


def write_error(exc: OSError, where: str) -> DataRootError | None:
    """A `DataRootError` that says what to do for a full or unwritable data root, else None (another error)."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return DataRootError(f"no space left writing {where} ({reason}): free space there or choose another "
                             "--data-root, then rerun; finished units are kept and nothing half-written was kept")
    if exc.errno in _DENIED or isinstance(exc, PermissionError):
        return DataRootError(f"cannot write {where} ({reason}): fix the permissions or choose another --data-root")
    return None


class DataFolder:
    """A root folder (local or remote) with atomic writes: write to a temporary name, then rename."""

    def __init__(self, root: str | os.PathLike[str], **storage_options: Any) -> None:
        root = os.fspath(root)
        self.fs, path = fsspec.core.url_to_fs(root, **storage_options)
        self.root = path.rstrip("/") or "/"
        self.url = root

    @property
    def is_local(self) -> bool:
        """Local roots allow appending (download resume) and direct file access."""
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """Full path (in the filesystem's own terms) of a relative location under the root."""
        rel = "/".join(p.strip("/") for p in parts if p)
        if ".." in rel.split("/"):
            raise ValueError(f"refusing a path that escapes the data root: {rel!r}")
        return f"{self.root}/{rel}" if rel else self.root

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def size(self, *parts: str) -> int:
        return int(self.fs.size(self.path(*parts)))

    def du(self, rel: str) -> int:
        """Bytes of every file under `rel` (0 when it is absent)."""
        return int(self.fs.du(self.path(rel), total=True)) if self.exists(rel) else 0

    def isdir(self, rel: str) -> bool:
        return bool(self.fs.isdir(self.path(rel)))

    def url_of(self, rel: str) -> str:
        """The full URL of `rel` (`s3://bucket/...`, `file:///...`), for readers that open URLs themselves."""
        return str(self.fs.unstrip_protocol(self.path(rel)))

    def check_writable(self) -> None:
        """Fail now, naming the root, when it cannot be written (rather than at every unit's first file)."""
        probe = f".designclip-write-probe-{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.makedirs("")
            with self.fs.open(self.path(probe), "wb") as f:
                f.write(b"ok")
            self.fs.rm(self.path(probe))
        except OSError as exc:
            raise (write_error(exc, f"the data root {self.url}") or DataRootError(
                f"the data root {self.url} cannot be written ({exc}): choose another --data-root")) from exc

    def makedirs(self, *parts: str) -> str:
        full = self.path(*parts)
        self.fs.makedirs(full, exist_ok=True)
        return full

    def open(self, rel: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        return self.fs.open(self.path(rel), mode, **kwargs)

    def read_bytes(self, rel: str, start: int | None = None, end: int | None = None) -> bytes:
        """Whole file, or the byte range [start, end) read without fetching the rest."""
        if start is None:
            return self.fs.cat_file(self.path(rel))
        return self.fs.cat_file(self.path(rel), start=start, end=end)

    def read_json(self, rel: str) -> Any:
        with self.open(rel, "rb") as f:
            return json.load(f)

    def list(self, rel: str, suffix: str = "") -> list[str]:
        """Relative paths of the files directly in `rel` ending with `suffix`, sorted."""
        if not self.exists(rel):
            return []
        prefix = self.path(rel)
        names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(prefix, detail=False)]
        return sorted(f"{rel.rstrip('/')}/{n}" for n in names if n.endswith(suffix) and not n.startswith("."))

    def find(self, rel: str) -> list[str]:
        """Relative paths of every file under `rel` (recursively), sorted; `[rel]` when it is a file."""
        if not self.exists(rel):
            return []
        full = self.path(rel)
        if not self.fs.isdir(full):
            return [rel]
        return sorted(self._rel(p) for p in self.fs.find(full))

    def ls_dirs(self, rel: str) -> list[str]:
        """Names of the folders directly in `rel` (hidden temporaries left out), sorted."""
        if not self.exists(rel):
            return []
        out = []
        for entry in self.fs.ls(self.path(rel), detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") == "directory" and not name.startswith("."):
                out.append(name)
        return sorted(out)

    def _rel(self, full: str) -> str:
        """The relative location of a full path under the root."""
        root = self.root.rstrip("/")
        return full[len(root):].lstrip("/") if full.startswith(root) else full

    def remove_temporaries(self, rel: str) -> int:
        """Delete hidden `.*.tmp` files a crashed writer left directly in `rel`; returns how many."""
        return self._remove_in(rel, lambda name: name.startswith(".") and name.endswith(".tmp"))

    def remove_temporaries_of(self, rel: str) -> int:
        """Delete the hidden temporaries a killed writer of `rel` left beside it (`.NAME.1a2b3c4d.tmp`, the names
        `atomic_open` and `put_file` use), and no one else's: other units may be writing in the same folder."""
        parent, _, name = rel.rpartition("/")
        mine = re.compile(rf"^\.{re.escape(name)}\.([0-9a-f]{{8}}|upload)\.tmp$")
        return self._remove_in(parent, lambda entry: mine.match(entry) is not None)

    def _remove_in(self, rel: str, chosen: Callable[[str], bool]) -> int:
        """Delete the files directly in folder `rel` whose names are `chosen`; returns how many."""
        if not self.exists(rel):
            return 0
        stale = [p for p in self.fs.ls(self.path(rel), detail=False) if chosen(p.rsplit("/", 1)[-1])]
        for p in stale:
            self.fs.rm(p)
        return len(stale)

    def modified(self, rel: str) -> str | None:
        """When `rel` was last written (ISO 8601, UTC), or None when that cannot be told."""
        try:
            return self.fs.modified(self.path(rel)).astimezone(dt.UTC).isoformat(timespec="seconds")
        except (OSError, NotImplementedError, AttributeError, ValueError):
            return None

    def remove(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.rm(self.path(rel))

    def remove_tree(self, rel: str, first: Callable[[str], bool] | None = None) -> bool:
        """Delete a file or folder under the root, the files `first` picks (e.g. done markers) before the rest.

        Returns whether there was anything to delete. Removing markers first means an interrupted removal leaves
        work that is "not done", never a marker whose outputs are gone.
        """
        if not self.exists(rel):
            return False
        if first is not None:
            for path in self.find(rel):
                if first(path):
                    self.fs.rm(self.path(path))
        if self.exists(rel):
            self.fs.rm(self.path(rel), recursive=True)
        return True

    def rename(self, src: str, dst: str) -> None:
        """Move within the root; on object stores this is copy + delete, done only once a file is whole."""
        self.fs.mv(self.path(src), self.path(dst))

    @contextlib.contextmanager
    def atomic_open(self, rel: str, mode: str = "wb") -> Iterator[IO[Any]]:
        """Write to a hidden temporary name beside `rel`; rename into place only when the block succeeds."""
        parent, _, name = rel.rpartition("/")
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp" if parent else f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        self.makedirs(parent)
        try:
            with self.fs.open(self.path(tmp), mode) as f:
                yield f
            self.fs.mv(self.path(tmp), self.path(rel))
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.fs.rm(self.path(tmp))
            if isinstance(exc, OSError) and (clear := write_error(exc, self.url_of(rel))) is not None:
                raise clear from exc
            raise

    def write_json(self, rel: str, obj: Any) -> None:
        with self.atomic_open(rel, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")

    def get_file(self, rel: str, local_path: str) -> None:
        """Download `rel` to a local file (for libraries that read only local paths)."""
        self.fs.get_file(self.path(rel), local_path)

    def put_file(self, local_path: str, rel: str) -> None:
        """Upload (or move, when local) a finished local file to `rel` atomically."""
        if self.is_local:
            self.makedirs(rel.rpartition("/")[0])
            os.replace(local_path, self.path(rel))
            return
        parent, _, name = rel.rpartition("/")
        tmp = f"{parent}/.{name}.upload.tmp"
        self.fs.put_file(local_path, self.path(tmp))
        self.fs.mv(self.path(tmp), self.path(rel))
        os.remove(local_path)
