"""Write rendered views as WebDataset shards: tar to a temporary name, rename, Parquet index, stats marker last."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import tarfile
import time
from collections import Counter
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from designclip.pipeline.release.rules import starts_new_shard
from designclip.storage import layout
from designclip.storage.folder import DataFolder

SHARD_INDEX = pa.schema(
    [
        ("key", pa.string()),
        ("patent_id", pa.string()),
        ("fig", pa.string()),
        ("view", pa.string()),
        ("sheet", pa.int16()),
        ("cls", pa.int16()),
        ("split", pa.string()),
        ("segmentation", pa.string()),
        ("flagged", pa.bool_()),
        ("png_bytes", pa.int64()),
        ("sample_bytes", pa.int64()),
        ("offset", pa.int64()),
        ("phash", pa.string()),  # the view's perceptual hash (pipeline.render.near_duplicates); null in older shards
        ("flag", pa.string()),  # why the view is flagged ("" when not); null in older shards
        ("phash256", pa.string()),  # 256-bit hash of the view's ink box (confirms near-duplicates); null in older
    ]
)
_FIG_NUMBER = re.compile(r"FIG\. \d[0-9A-Za-z.\-]*")
_MTIME = 1_600_000_000  # fixed member mtime: identical inputs give byte-identical shards


def flag_reason(flag: str) -> str:
    """A flag without its FIG. numbers, so the stats count flags by kind ("label reads FIG. n, expected FIG. n")."""
    return _FIG_NUMBER.sub("FIG. n", flag)


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = len(data), _MTIME, 0o644, "designclip", "designclip"
    tar.addfile(info, io.BytesIO(data))


def sample_members(key: str, png: bytes, meta: dict[str, Any], txt: str, cls: int) -> list[tuple[str, bytes]]:
    """The members of one sample in a fixed order: png, json, cls, txt."""
    if "." in key:
        raise ValueError(f"sample key {key!r} contains a dot; webdataset would split it")
    body = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str).encode()
    return [(f"{key}.png", png), (f"{key}.json", body), (f"{key}.cls", str(cls).encode()), (f"{key}.txt", txt.encode())]


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
        self.rows: list[dict[str, Any]] = []
        self.samples = 0
        self.bytes = 0

    def write(self, members: list[tuple[str, bytes]]) -> int:
        """Append one sample's members; returns the tar offset of its first header."""
        offset = self._tar.offset
        for name, data in members:
            add_member(self._tar, name, data)
        self.samples += 1
        return offset

    def add(self, key: str, members: list[tuple[str, bytes]], row: dict[str, Any]) -> None:
        """Append a sample and keep its index row (payload bytes count towards the shard's byte limit)."""
        offset = self.write(members)
        size = sum(len(d) for _, d in members)
        self.rows.append({**row, "key": key, "sample_bytes": size, "offset": offset})
        self.bytes += size

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


def write_index(folder: DataFolder, rel: str, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in SHARD_INDEX} for r in rows], schema=SHARD_INDEX)
    with folder.atomic_open(rel, "wb") as f:
        pq.write_table(table, f)


def read_index(folder: DataFolder, rel: str) -> pa.Table:
    with folder.open(rel) as f:
        return pq.read_table(f, schema=SHARD_INDEX)


class WeekShardWriter:
    """Shards of one week, cut by sample count and bytes; a patent's views never straddle two shards.

    Resumable: shards whose stats marker exists are kept as they are; writing continues after the
    last patent they hold, so a rerun after a crash produces the same shards as an uninterrupted run.
    """

    def __init__(self, folder: DataFolder, profile: str, week: dt.date, max_samples: int = 1000,
                 max_bytes: int = 256 * 2**20, settings: dict[str, Any] | None = None) -> None:
        if max_samples < 1 or max_bytes < 1:
            raise ValueError("shard limits must be positive")
        self.folder, self.profile, self.week = folder, profile, week
        self.max_samples, self.max_bytes = max_samples, max_bytes
        self.settings = settings or {}
        folder.remove_temporaries(layout.shard_dir(profile, week))  # a crashed run's half-written shard
        self.finished: list[dict[str, Any]] = self._finished_shards()
        self.done_patents = {p for s in self.finished for p in s["patents"]}
        self._shard: TarShard | None = None
        self._patents: list[str] = []
        self._failures: list[dict[str, Any]] = []
        self._started = time.perf_counter()

    def _finished_shards(self) -> list[dict[str, Any]]:
        """The done prefix 00000..k of this week's shards (stale temporaries and unfinished tars are ignored)."""
        names = self.folder.list(layout.shard_dir(self.profile, self.week), ".stats.json")
        numbers = sorted(int(m.group(1)) for n in names if (m := re.search(r"(\d{5})\.stats\.json$", n)))
        done = []
        for expected, number in enumerate(numbers):
            if number != expected:
                break
            done.append(self.folder.read_json(layout.shard_stats(self.profile, self.week, number)))
        return done

    @property
    def next_number(self) -> int:
        return len(self.finished)

    def add_patent(self, patent_id: str, samples: list[tuple[str, list[tuple[str, bytes]], dict[str, Any]]],
                   failures: list[dict[str, Any]]) -> None:
        """Append one patent's samples (key, members, index row) and its failures, keeping them in one shard."""
        size = sum(len(d) for _, members, _ in samples for _, d in members)
        shard = self._shard
        if shard is not None and starts_new_shard(shard.samples, shard.bytes, len(samples), size,
                                                  self.max_samples, self.max_bytes):
            self._close_shard()
        if self._shard is None:
            self._open_shard()
        assert self._shard is not None
        for key, members, row in samples:
            self._shard.add(key, members, row)
        self._patents.append(patent_id)
        self._failures.extend(failures)

    def _open_shard(self) -> None:
        self._shard = TarShard(self.folder, layout.shard_tar(self.profile, self.week, self.next_number))
        self._patents, self._failures, self._started = [], [], time.perf_counter()

    def _close_shard(self) -> None:
        shard, number = self._shard, self.next_number
        assert shard is not None
        written = shard.commit()
        write_index(self.folder, layout.shard_index(self.profile, self.week, number), shard.rows)
        stats = {
            "shard": layout.shard_tar(self.profile, self.week, number),
            "week": self.week.isoformat(),
            "number": number,
            "samples": len(shard.rows),
            "patents": self._patents,
            "bytes": written["bytes"],
            "flagged": sum(1 for r in shard.rows if r.get("flagged")),
            "flags_by_reason": dict(Counter(flag_reason(r["flag"]) for r in shard.rows if r.get("flag"))),
            "segmentation": dict(Counter(r.get("segmentation") for r in shard.rows)),
            "failures": len(self._failures),
            "failures_by_reason": dict(Counter(f["reason"] for f in self._failures)),
            "failure_details": self._failures,
            "duration_s": round(time.perf_counter() - self._started, 3),
            "settings": self.settings,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        self.folder.write_json(layout.shard_stats(self.profile, self.week, number), stats)
        self.finished.append(stats)
        self._shard = None

    def close(self) -> list[dict[str, Any]]:
        """Finish the open shard (if any) and return every shard's stats, finished earlier or now."""
        if self._shard is not None:
            self._close_shard()
        return self.finished

    def abort(self) -> None:
        """Drop the open shard's temporary file; finished shards stay."""
        if self._shard is not None:
            self._shard.abort()
            self._shard = None
