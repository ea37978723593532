"""Read single samples of a release by key (manifest shard + tar offset), with ranged reads that work on s3:// too."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder

# Sample keys as the render stage makes them (`USD0917866_f1`, `USD0917866_f3-A`): no dots, slashes or spaces.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_MANIFEST_COLUMNS = ("key", "split", "shard", "offset", "sample_bytes", "patent_id", "fig", "view", "cls",
                     "uspc_class", "locarno_class")
_SLACK = 8192  # tar headers and padding of a sample's members beyond their data bytes (4 members: < 4 KiB)


class SampleReadError(RuntimeError):
    """The manifest points at bytes that are not the sample's tar members: the release is damaged or changed."""


class UnknownSample(KeyError):
    """A key that is not in the release (or is not a well-formed sample key at all)."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0]) if self.args else "unknown sample"


def check_key(key: str) -> str:
    """A key safe to put in a URL path or a member name: letters, digits, `_` and `-` (no `.`, `/`, `..`)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise UnknownSample(f"{key!r} is not a sample key (letters, digits, _ and - only)")
    return key


def _parse_members(buf: bytes, key: str, exts: frozenset[str]) -> tuple[dict[str, bytes], bool]:
    """Members of `key` found at the start of `buf`; True when the sample's members ended inside `buf`."""
    found: dict[str, bytes] = {}
    try:
        tar = tarfile.open(fileobj=io.BytesIO(buf), mode="r:")
    except tarfile.ReadError as err:
        raise SampleReadError(f"no tar header at the manifest offset ({err})") from err
    with tar:
        info = tar.next()  # the first member (read when the archive was opened)
        while info is not None:
            name_key, _, ext = info.name.rpartition("/")[2].partition(".")
            if name_key != key:
                if not found and info.offset == 0:
                    raise SampleReadError(f"the manifest offset holds member {info.name!r}, not sample {key!r}")
                return found, True
            if info.isfile() and ext in exts:
                end = info.offset_data + info.size
                if end > len(buf):
                    return found, False
                found[ext] = buf[info.offset_data:end]
            if exts <= found.keys():
                return found, True
            try:
                info = tar.next()
            except tarfile.ReadError:
                return found, False
    return found, False


def read_sample_members(folder: DataFolder, shard_rel: str, offset: int, key: str, size_hint: int = 0,
                        exts: Iterable[str] = ("png", "json")) -> dict[str, bytes]:
    """The `exts` members of sample `key` whose first tar header is at byte `offset` of `shard_rel`.

    Reads only a byte range of the shard (sample size + header slack, grown if the sample turns out larger),
    so a thumbnail from a multi-GB remote shard costs one small ranged GET. Raises SampleReadError when a
    wanted member is missing or the offset does not point at the sample.
    """
    check_key(key)
    wanted = frozenset(exts)
    span = max(int(size_hint) + _SLACK, 64 * 1024)
    while True:
        buf = folder.read_bytes(shard_rel, int(offset), int(offset) + span)
        found, complete = _parse_members(buf, key, wanted)
        if complete or len(buf) < span:  # done, or the shard ended
            break
        span *= 4
    missing = sorted(wanted - found.keys())
    if missing:
        raise SampleReadError(f"{shard_rel} @ {offset}: sample {key} has no {', '.join(missing)} member; "
                              "the release is damaged: rebuild it or restore the shard")
    return found


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives in a release and what it shows (one manifest row)."""

    key: str
    split: str
    shard: str
    offset: int
    sample_bytes: int
    patent_id: str
    fig: str | None
    view: str | None
    cls: int
    uspc_class: str | None
    locarno_class: str | None


def manifest_columns(folder: DataFolder, release: str, columns: Iterable[str]) -> dict[str, list[Any]]:
    """Columns of a release's manifest.parquet as lists; a missing manifest names the command that builds it."""
    rel = layout.release_file(release, "manifest.parquet")
    if not folder.exists(rel):
        raise FileNotFoundError(f"release {release!r} has no manifest at {folder.path(rel)}; "
                                f"build it with `designclip release --version {release}`")
    columns = list(columns)
    with folder.open(rel) as f:
        table = pq.read_table(f, columns=columns)
    return {name: table.column(name).to_pylist() for name in columns}


class ReleaseCatalog:
    """A release's manifest loaded once (key -> shard + offset) to fetch any view's PNG or JSON by key."""

    def __init__(self, folder: DataFolder, release: str, titles: Mapping[str, str] | None = None) -> None:
        self.folder, self.release = folder, release
        self._columns = manifest_columns(folder, release, _MANIFEST_COLUMNS)
        self._row = {k: i for i, k in enumerate(self._columns["key"])}
        self._titles = dict(titles or {})

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._row

    def keys(self) -> list[str]:
        return list(self._columns["key"])

    def ref(self, key: str) -> SampleRef:
        """The manifest row of `key`; UnknownSample for malformed keys and keys not in the release."""
        check_key(key)
        i = self._row.get(key)
        if i is None:
            raise UnknownSample(f"{key!r} is not a sample of release {self.release}")
        c = self._columns
        return SampleRef(key, c["split"][i], c["shard"][i], int(c["offset"][i]), int(c["sample_bytes"][i] or 0),
                         c["patent_id"][i], c["fig"][i], c["view"][i], int(c["cls"][i]), c["uspc_class"][i],
                         c["locarno_class"][i])

    def members(self, key: str, exts: Iterable[str] = ("png", "json")) -> dict[str, bytes]:
        ref = self.ref(key)
        return read_sample_members(self.folder, layout.release_file(self.release, ref.shard), ref.offset, key,
                                   ref.sample_bytes, exts)

    def png(self, key: str) -> bytes:
        return self.members(key, ("png",))["png"]

    def meta(self, key: str) -> dict[str, Any]:
        """The sample's json member (title, caption metadata, classes, dates...)."""
        return json.loads(self.members(key, ("json",))["json"])

    def title(self, key: str) -> str:
        """The design's title: from the titles given (embedding metadata) or else the sample's json."""
        if key not in self._titles:
            self._titles[key] = str(self.meta(key).get("title") or "")
        return self._titles[key]


def read_embed_meta(folder: DataFolder, release: str, tag: str, columns: Iterable[str],
                    splits: Iterable[str] = ("train", "val", "test")) -> dict[str, list[Any]]:
    """Chosen columns of the embeddings' per-shard metadata Parquet (no vectors), all splits in shard order."""
    wanted = list(dict.fromkeys(columns))
    out: dict[str, list[Any]] = {name: [] for name in wanted}
    for split in splits:
        for rel in folder.list(f"{layout.embed_dir(release, tag)}/{split}", ".parquet"):
            with folder.open(rel) as f:
                table = pq.read_table(f, columns=wanted)
            for name in wanted:
                out[name].extend(table.column(name).to_pylist())
    return out
