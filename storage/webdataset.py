"""WebDataset samples as the shards store them: member names, members grouped into samples, tar sizes, streaming.

Render writes these tars, release and caption read them back, training streams them: the format is storage's, so
every stage takes these names from here.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fsspec
from designclip.storage.sample_json import normalise_sample_json
from designclip.storage.vocabulary import ReleaseError

Members = list[tuple[str, bytes]]
"""One sample's tar members in order: (name, data), e.g. ('USD0915080_f1.png', b'...')."""

_BLOCK = 512


@dataclass
class SourceSample:
    """One sample read from a rendered week shard, its members as stored (png, json, cls, txt)."""

    key: str
    members: Members
    source: str
    position: int
    week: str

    @cached_property
    def meta(self) -> dict[str, Any]:
        """The json member with every field of storage/sample_json.py, typed (older shards are filled in)."""
        body = next((d for n, d in self.members if n.endswith(".json")), None)
        if body is None:
            raise ReleaseError(f"{self.source}: sample {self.key} has no .json member")
        try:
            return normalise_sample_json(json.loads(body))
        except ValueError as exc:  # bad JSON, or a field storage/sample_json.py does not declare or type
            raise ReleaseError(f"{self.source} (week {self.week}): {exc}") from exc

    @property
    def patent_id(self) -> str:
        return str(self.meta["patent_id"])


def member_key(name: str) -> tuple[str, str]:
    """'USD0915080_f1.png' -> ('USD0915080_f1', 'png'): webdataset splits at the first dot."""
    key, dot, ext = name.partition(".")
    if not dot or not key:
        raise ReleaseError(f"tar member {name!r} is not a webdataset member (key.ext)")
    return key, ext


def group_members(members: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, Members]]:
    """Adjacent members with the same key form one sample."""
    key: str | None = None
    group: Members = []
    for name, data in members:
        k, _ = member_key(name)
        if k != key and group:
            yield key, group  # type: ignore[misc]
            group = []
        key = k
        group.append((name, data))
    if group:
        yield key, group  # type: ignore[misc]


def tar_size(members: Iterable[tuple[str, bytes]]) -> int:
    """Bytes the members take in a tar: a 512-byte header each plus data padded to 512."""
    return sum(_BLOCK + -(-len(d) // _BLOCK) * _BLOCK for _, d in members)


def payload_size(members: Iterable[tuple[str, bytes]]) -> int:
    """Bytes of the members' data alone (what the render stage's shard limit counts)."""
    return sum(len(d) for _, d in members)


def _path_key(name: str) -> tuple[str, str]:
    """'dir/USD0915080_f1.png' -> ('dir/USD0915080_f1', 'png'): webdataset splits the base name at its first dot."""
    head, _, base = name.rpartition("/")
    key, _, ext = base.partition(".")
    return (f"{head}/{key}" if head else key), ext


def tar_samples(url: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) per sample of one shard, streamed (no seeking, works on remote URLs)."""
    key: str | None = None
    members: dict[str, bytes] = {}
    try:
        with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                k, ext = _path_key(info.name)
                if k != key and members:
                    yield key, members  # type: ignore[misc]
                    members = {}
                key = k
                data = tar.extractfile(info)
                members[ext] = data.read() if data is not None else b""
    except tarfile.TarError as err:
        raise RuntimeError(f"{url}: unreadable shard ({err}); re-download or rebuild the release") from err
    if members:
        yield key, members  # type: ignore[misc]
