"""Write rendered views as WebDataset shards of one week: tars through the one shard roller, a Parquet index beside
each, its stats marker last; resumable after the last finished shard."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker
from designclip.storage.shard_roller import HashingWriter, OpenShard, ShardRoller, TarShard, add_member
from designclip.storage.webdataset import Members, payload_size

__all__ = ["MAX_KEY_BYTES", "SHARD_INDEX", "HashingWriter", "TarShard", "WeekShardWriter", "add_member", "flag_reason",
           "key_problem", "read_index", "sample_members", "write_index"]

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


def flag_reason(flag: str) -> str:
    """A flag without its FIG. numbers, so the stats count flags by kind ("label reads FIG. n, expected FIG. n")."""
    return _FIG_NUMBER.sub("FIG. n", flag)


MAX_KEY_BYTES = 100 - len(".json")
"""Shards are USTAR tars: a member name (`<key>.json`, the longest) holds at most 100 bytes."""


def key_problem(key: str) -> str | None:
    """Why a sample key cannot name WebDataset members (a dot, a slash, too long), or None when it can."""
    if "." in key:
        return "contains a dot; webdataset would split it"
    if "/" in key or not key:
        return "is empty or contains a slash; it must be one plain name"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"is {len(key.encode())} bytes, over the {MAX_KEY_BYTES} that fit a tar member name"
    return None


def sample_members(key: str, png: bytes, meta: dict[str, Any], txt: str, cls: int) -> list[tuple[str, bytes]]:
    """The members of one sample in a fixed order: png, json, cls, txt."""
    if (problem := key_problem(key)) is not None:
        raise ValueError(f"sample key {key[:60]!r} {problem}; ingest refuses such patent ids (doc-numbers) now: "
                         "ingest the week again with `designclip rerun --force ingest`")
    body = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str).encode()
    return [(f"{key}.png", png), (f"{key}.json", body), (f"{key}.cls", str(cls).encode()), (f"{key}.txt", txt.encode())]


def write_index(folder: DataFolder, rel: str, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in SHARD_INDEX} for r in rows], schema=SHARD_INDEX)
    with folder.atomic_open(rel, "wb") as f:
        pq.write_table(table, f)


def read_index(folder: DataFolder, rel: str) -> pa.Table:
    with folder.open(rel) as f:
        return pq.read_table(f, schema=SHARD_INDEX)




class WeekShardWriter:
    """Shards of one week, cut by sample count and payload bytes; a patent's views never straddle two shards.

    Resumable: shards whose stats marker exists are kept as they are; writing continues after the
    last patent they hold, so a rerun after a crash produces the same shards as an uninterrupted run.
    """

    def __init__(self, folder: DataFolder, profile: str, week: dt.date, max_samples: int = layout.DEFAULT_SHARD_SAMPLES,
                 max_bytes: int = layout.DEFAULT_SHARD_BYTES, settings: dict[str, Any] | None = None) -> None:
        self.folder, self.profile, self.week = folder, profile, week
        self.settings = settings or {}
        folder.remove_temporaries(layout.shard_dir(profile, week))  # a crashed run's half-written shard
        self.finished: list[dict[str, Any]] = self._finished_shards()
        self.done_patents = {p for s in self.finished for p in s["patents"]}
        self._roller = ShardRoller(folder, lambda n: layout.shard_tar(profile, week, n), max_samples, max_bytes,
                                   self._finish, size_of=payload_size, first_number=len(self.finished))
        self._rows: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []

    def _finished_shards(self) -> list[dict[str, Any]]:
        """The done prefix 00000..k of this week's shards (stale temporaries and unfinished tars are ignored)."""
        names = self.folder.list(layout.shard_dir(self.profile, self.week), ".stats.json")
        numbers = sorted(int(m.group(1)) for n in names if (m := re.search(r"(\d{5})\.stats\.json$", n)))
        done = []
        for expected, number in enumerate(numbers):
            if number != expected:
                break
            done.append(self._marker(number).read())
        return done

    def _marker(self, number: int) -> DoneMarker:
        return DoneMarker(self.folder, layout.shard_stats(self.profile, self.week, number))

    @property
    def next_number(self) -> int:
        return self._roller.next_number

    def add_patent(self, patent_id: str, samples: list[tuple[str, Members, dict[str, Any]]],
                   failures: list[dict[str, Any]]) -> None:
        """Append one patent's samples (key, members, index row) and its failures, keeping them in one shard."""
        placed = self._roller.add(patent_id, [members for _, members, _ in samples])
        for (key, members, row), (_, _, offset) in zip(samples, placed, strict=True):
            self._rows.append({**row, "key": key, "sample_bytes": payload_size(members), "offset": offset})
        self._failures.extend(failures)

    def _finish(self, shard: OpenShard, written: dict[str, Any]) -> dict[str, Any]:
        """Beside the committed tar: its Parquet index, then its stats marker (last)."""
        rows, failures, self._rows, self._failures = self._rows, self._failures, [], []
        write_index(self.folder, layout.shard_index(self.profile, self.week, shard.number), rows)
        stats = {
            "shard": shard.rel,
            "week": self.week.isoformat(),
            "number": shard.number,
            "samples": len(rows),
            "patents": shard.patents,
            "bytes": written["bytes"],
            "flagged": sum(1 for r in rows if r.get("flagged")),
            "flags_by_reason": dict(Counter(flag_reason(r["flag"]) for r in rows if r.get("flag"))),
            "segmentation": dict(Counter(r.get("segmentation") for r in rows)),
            "failures": len(failures),
            "failures_by_reason": dict(Counter(f["reason"] for f in failures)),
            "failure_details": failures,
            "duration_s": round(time.perf_counter() - shard.opened_at, 3),
            "settings": self.settings,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        self._marker(shard.number).write(stats)
        self.finished.append(stats)
        return stats

    def close(self) -> list[dict[str, Any]]:
        """Finish the open shard (if any) and return every shard's stats, finished earlier or now."""
        self._roller.close()
        return self.finished

    def abort(self) -> None:
        """Drop the open shard's temporary file; finished shards stay."""
        self._roller.abort()
