"""Read finished render weeks and write a release folder: shards, sizes.json, wids indexes, manifest, sums, marker."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker, content_sha256
from designclip.storage.shard_roller import HashingWriter, OpenShard, Placed, ShardRoller
from designclip.storage.shards import read_index
from designclip.storage.tables import finished_weeks
from designclip.storage.vocabulary import SPLITS, ReleaseError
from designclip.storage.webdataset import Members, SourceSample, group_members, member_key

MANIFEST = pa.schema(
    [
        ("key", pa.string()),
        ("split", pa.string()),
        ("shard", pa.string()),
        ("shard_index", pa.int32()),
        ("offset", pa.int64()),
        ("patent_id", pa.string()),
        ("fig", pa.string()),
        ("view", pa.string()),
        ("view_direction", pa.string()),
        ("view_type", pa.string()),
        ("cls", pa.int16()),
        ("uspc_class", pa.string()),
        ("locarno_class", pa.string()),
        ("grant_year", pa.int16()),
        ("grant_date", pa.string()),
        ("segmentation", pa.string()),
        ("flagged", pa.bool_()),
        ("caption_source", pa.string()),
        ("png_bytes", pa.int64()),
        ("sample_bytes", pa.int64()),
        ("source_week", pa.string()),
        ("source_shard", pa.string()),
        ("source_index", pa.int32()),
        ("dup_group", pa.string()),  # near-duplicate group (its smallest patent id); null when the patent has none
        ("excluded_by", pa.string()),  # the exclusion list that kept the patent out of train/val; null when none
    ]
)


class ReleaseInputError(RuntimeError):
    """A rendered week shard is unreadable or disagrees with its index; re-render that week."""


@dataclass(frozen=True)
class ReleaseInput:
    """One finished render week: its marker (the done record) and the shards it lists."""

    week: dt.date
    marker: str
    sha256: str  # of the marker without its run times: two renders that made the same shards hash alike
    samples: int
    shards: tuple[str, ...]
    size: int | None
    file_sha256: str = ""  # of the marker's bytes, as releases built before recorded it

    def record(self, legacy: bool = False) -> dict[str, Any]:
        """What the release's fingerprint keeps of this input (a week rendered differently changes its hash)."""
        return {"week": self.week.isoformat(), "marker": self.marker,
                "sha256": self.file_sha256 if legacy else self.sha256, "samples": self.samples,
                "shards": list(self.shards)}


def release_inputs(folder: DataFolder, profile: str, years: set[int] | None = None) -> list[ReleaseInput]:
    """Finished render weeks of `profile`, oldest first, optionally only those granted in `years`."""
    stage = layout.render_stage(profile)
    out = []
    for week in finished_weeks(folder, stage):
        if years and week.year not in years:
            continue
        rel = layout.stats_marker(stage, week)
        body = folder.read_bytes(rel)
        marker = json.loads(body)
        out.append(ReleaseInput(week, rel, content_sha256(body), int(marker["samples"]), tuple(marker["shards"]),
                                (marker.get("settings") or {}).get("size"), hashlib.sha256(body).hexdigest()))
    return out


def unrendered_weeks(folder: DataFolder, profile: str, years: set[int] | None = None) -> list[dt.date]:
    """Weeks that are ingested but have no finished render under `profile` (reported, not released)."""
    rendered = set(finished_weeks(folder, layout.render_stage(profile)))
    return [w for w in finished_weeks(folder, "ingest") if w not in rendered and (not years or w.year in years)]


def shard_number(rel: str) -> int:
    """`shards/px512/I20210105/00003.tar` -> 3."""
    m = re.search(r"(\d{5})\.tar$", rel)
    if not m:
        raise ReleaseInputError(f"{rel}: not a shard name")
    return int(m.group(1))


def iter_shard_samples(folder: DataFolder, profile: str, week: dt.date, rel: str) -> Iterator[SourceSample]:
    """One rendered shard's samples in order, each checked against the shard's Parquet index."""
    day = week.isoformat()
    expected = read_index(folder, layout.shard_index(profile, week, shard_number(rel))).column("key").to_pylist()
    got = 0
    with folder.open(rel) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        members = ((m.name, _read(tar, m, rel)) for m in tar if m.isfile())
        for position, (key, group) in enumerate(group_members(members)):
            if position >= len(expected) or expected[position] != key:
                raise ReleaseInputError(f"{rel}: sample {position} is {key!r} but its index says "
                                        f"{expected[position] if position < len(expected) else 'nothing'}; "
                                        f"re-render week {day}")
            got += 1
            yield SourceSample(key, group, rel, position, day)
    if got != len(expected):
        raise ReleaseInputError(f"{rel}: {got} samples but its index lists {len(expected)}; re-render week {day}")


def iter_index_rows(folder: DataFolder, profile: str, item: ReleaseInput,
                    columns: tuple[str, ...] = ("key", "patent_id", "sheet", "segmentation", "phash")
                    ) -> Iterator[dict[str, Any]]:
    """The week's shard index rows (small Parquet files, no tar read): what a release plans its splits from."""
    for rel in item.shards:
        table = read_index(folder, layout.shard_index(profile, item.week, shard_number(rel)))
        yield from table.select(list(columns)).to_pylist()


def iter_source_samples(folder: DataFolder, profile: str, item: ReleaseInput) -> Iterator[SourceSample]:
    """The week's samples in shard order, each checked against its shard's Parquet index."""
    for rel in item.shards:
        yield from iter_shard_samples(folder, profile, item.week, rel)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, rel: str) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise ReleaseInputError(f"{rel}: member {member.name} is unreadable")
    member_key(member.name)
    return f.read()


class SplitWriter:
    """The shards of one split: cut by samples and tar bytes, a patent's samples always in one shard, in order."""

    def __init__(self, folder: DataFolder, version: str, split: str, max_samples: int, max_bytes: int,
                 on_shard: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.folder, self.version, self.split, self.on_shard = folder, version, split, on_shard
        self._roller = ShardRoller(folder, lambda n: layout.release_file(version, self._name(n)), max_samples,
                                   max_bytes, self._finish)

    def _name(self, number: int) -> str:
        return layout.release_shard_name(self.split, number)

    @property
    def shards(self) -> list[dict[str, Any]]:
        return self._roller.closed

    def add_patent(self, patent_id: str, samples: list[Members]) -> list[tuple[str, int, int]]:
        """Write one patent's samples; returns (shard name, index in shard, tar offset) per sample."""
        placed: list[Placed] = self._roller.add(patent_id, samples)
        return [(self._name(number), index, offset) for number, index, offset in placed]

    def _finish(self, shard: OpenShard, written: dict[str, Any]) -> dict[str, Any]:
        info = {"name": self._name(shard.number), "samples": shard.samples, "patents": len(shard.patents), **written}
        if self.on_shard is not None:
            self.on_shard(self.split, info)
        return info

    def close(self) -> list[dict[str, Any]]:
        return self._roller.close()

    def abort(self) -> None:
        self._roller.abort()


WORK_DIR = ".work"
"""A release's temporary work (manifest parts, the spill), inside its folder: a crash leaves it where the next build
of that version removes it with the rest of the half-written release, never in /tmp."""


def release_work_dir(version: str) -> str:
    return layout.release_file(version, WORK_DIR)


def local_work_dir(folder: DataFolder, version: str) -> str | None:
    """The release's work folder as a local path (made now) when the data root is local; None for object stores."""
    if not folder.is_local:
        return None
    return folder.makedirs(release_work_dir(version))


class ManifestWriter:
    """manifest.parquet without holding every row: one Parquet part per split under the release's work folder,
    joined in split order; the work folder is removed on exit (and by the next build after a crash)."""

    def __init__(self, folder: DataFolder, version: str, batch_rows: int = 50_000) -> None:
        self.folder, self.batch_rows = folder, batch_rows
        self.work = release_work_dir(version)
        self._rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        self._files: dict[str, Any] = {}
        self._parts: dict[str, pq.ParquetWriter] = {}

    def __enter__(self) -> ManifestWriter:
        self.folder.makedirs(self.work)
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_parts()
        self.folder.remove_tree(self.work)

    def _close_parts(self) -> None:
        for w in self._parts.values():
            w.close()
        for f in self._files.values():
            f.close()
        self._parts.clear()
        self._files.clear()

    def add(self, row: dict[str, Any]) -> None:
        self._rows[row["split"]].append(row)
        if len(self._rows[row["split"]]) >= self.batch_rows:
            self._flush(row["split"])

    def _part(self, split: str) -> str:
        return f"{self.work}/{split}.parquet"

    def _flush(self, split: str) -> None:
        rows, self._rows[split] = self._rows[split], []
        if not rows:
            return
        if split not in self._parts:
            self._files[split] = self.folder.open(self._part(split), "wb")
            self._parts[split] = pq.ParquetWriter(self._files[split], MANIFEST)
        table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in MANIFEST} for r in rows], schema=MANIFEST)
        self._parts[split].write_table(table)

    def finish(self) -> str:
        """The whole manifest (its path under the data root): train rows, then val, then test, each in release order."""
        for split in SPLITS:
            self._flush(split)
        written = [s for s in SPLITS if s in self._parts]
        self._close_parts()
        final = f"{self.work}/manifest.parquet"
        with self.folder.open(final, "wb") as f, pq.ParquetWriter(f, MANIFEST, compression="zstd") as out:
            for split in written:
                with self.folder.open(self._part(split)) as part:
                    for batch in pq.ParquetFile(part).iter_batches(batch_size=self.batch_rows):
                        out.write_batch(batch)
            if not written:
                out.write_table(MANIFEST.empty_table())
        return final


class ReleaseFolder:
    """Everything under `releases/{version}/`; remembers the sha256 of each file it writes for SHA256SUMS."""

    def __init__(self, folder: DataFolder, version: str) -> None:
        self.folder, self.version = folder, version
        self.rel = layout.release_dir(version)
        self.sums: dict[str, str] = {}

    @property
    def done_marker(self) -> DoneMarker:
        """release.json, written last: without it a release folder is a crashed run's leftovers."""
        return DoneMarker(self.folder, layout.release_marker(self.version))

    def marker(self) -> dict[str, Any] | None:
        """The finished release's marker, or None while the release is missing or half-written."""
        return self.done_marker.read()

    def exists(self) -> bool:
        return self.folder.exists(self.rel)

    def remove(self) -> None:
        """Delete a crashed release's leftovers (never called on a finished one)."""
        if self.marker() is not None:
            raise ReleaseError(f"release {self.version} is finished; releases are immutable")
        self.folder.remove_tree(self.rel)

    def split_writer(self, split: str, max_samples: int, max_bytes: int,
                     on_shard: Callable[[str, dict[str, Any]], None] | None = None) -> SplitWriter:
        def record(name: str, info: dict[str, Any]) -> None:
            self.sums[info["name"]] = info["sha256"]
            if on_shard is not None:
                on_shard(name, info)

        return SplitWriter(self.folder, self.version, split, max_samples, max_bytes, record)

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.folder.atomic_open(layout.release_file(self.version, name), "wb") as f:
            f.write(data)
        self.sums[name] = hashlib.sha256(data).hexdigest()

    def write_json(self, name: str, obj: Any) -> None:
        self.write_bytes(name, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())

    def write_split_indexes(self, split: str, shards: list[dict[str, Any]]) -> None:
        """sizes.json as open_clip_train reads it; the wids index too when the split has shards."""
        self.write_json(layout.release_sizes_name(split), {s["name"].rsplit("/", 1)[-1]: s["samples"] for s in shards})
        if shards:
            self.write_json(layout.release_wids_name(split), {
                "__kind__": "wids-shard-index-v1",
                "wids_version": 1,
                "name": f"designclip-{self.version}-{split}",
                "shardlist": [{"url": s["name"], "nsamples": s["samples"], "filesize": s["bytes"], "md5sum": s["md5"]}
                              for s in shards],
            })

    def write_copy(self, name: str, rel: str) -> None:
        """Copy a finished file under the data root in (streamed, hashed on the way)."""
        with self.folder.open(rel) as src, self.folder.atomic_open(layout.release_file(self.version, name)) as f:
            sink = HashingWriter(f)
            while chunk := src.read(2**22):
                sink.write(chunk)
        self.sums[name] = sink.sha256.hexdigest()

    def write_manifest(self, manifest: ManifestWriter) -> None:
        self.write_copy("manifest.parquet", manifest.finish())

    def write_sums(self) -> str:
        """SHA256SUMS over every file written so far, `sha256sum -c` format; returns its own sha256."""
        text = "".join(f"{sha}  {name}\n" for name, sha in sorted(self.sums.items()))
        data = text.encode()
        with self.folder.atomic_open(layout.release_file(self.version, "SHA256SUMS"), "wb") as f:
            f.write(data)
        return hashlib.sha256(data).hexdigest()

    def write_marker(self, marker: dict[str, Any]) -> None:
        """Written last: a release without it is half-written and rebuilt from scratch."""
        self.done_marker.write(marker)

    def url(self) -> str:
        return self.folder.path(self.rel)


def read_release_marker(folder: DataFolder, version: str) -> dict[str, Any] | None:
    return ReleaseFolder(folder, version).marker()


def release_digest(marker: dict[str, Any]) -> str:
    """sha256 of a release marker's input fingerprint: what runs and vectors record as "made from this release"."""
    return hashlib.sha256(json.dumps(marker["fingerprint"], sort_keys=True).encode()).hexdigest()
