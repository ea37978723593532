"""A release's shards: every input sample read once into a local spill, then written per split in release order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.common.splits import SPLITS, hash_unit
from designclip.pipeline.common.stage import Logger, Progress, no_progress
from designclip.pipeline.release.inputs import ReleaseSources
from designclip.pipeline.release.members import (
    SourceSample,
    caption_fields,
    group_patents,
    manifest_row,
    release_members,
)
from designclip.pipeline.release.options import METADATA_CAPTIONS
from designclip.pipeline.release.plan import EXCLUDED_DROPPED, ReleasePlan
from designclip.pipeline.release.tally import Tally
from designclip.storage.captions import read_shard_captions
from designclip.storage.folder import DataFolder
from designclip.storage.release import (
    ManifestWriter,
    ReleaseFolder,
    iter_source_samples,
    local_work_dir,
    shard_number,
)
from designclip.storage.release_spill import OrderedSpill

OnShard = Callable[[str, dict[str, Any]], None]
ORDER_SALT = "release-order/"  # not the split hash's salt: the order within a split is its own permutation


def release_order(patent_id: str) -> tuple[float, str]:
    """Where a patent goes in its split: a stable hash of its id, so shards and batches mix US classes (USPTO
    numbers a week's designs in class runs) and a rebuilt release is byte-identical."""
    return hash_unit(patent_id, ORDER_SALT), patent_id


@dataclass
class Written:
    """What writing the shards found: shards per split, duplicates dropped, samples left out, each patent's split."""

    shards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)
    released: dict[str, str] = field(default_factory=dict)


def write_shards(folder: DataFolder, out: ReleaseFolder, sources: ReleaseSources, plan: ReleasePlan, log: Logger,
                 on_shard: OnShard | None, manifest: ManifestWriter, tally: Tally,
                 progress: Progress = no_progress) -> Written:
    """Read every input sample once in week/shard/position order (the first copy of a key or patent wins) into a
    local spill, then write each split's shards in `release_order` of patent, a patent's views together."""
    def shard_done(split: str, info: dict[str, Any]) -> None:
        log.info("release %s: %s %d samples of %d patents, %d bytes", out.version, info["name"], info["samples"],
                 info["patents"], info["bytes"])
        if on_shard is not None:
            on_shard(split, info)

    options = sources.options
    writers = {s: out.split_writer(s, options.shard_samples, options.shard_bytes, shard_done) for s in SPLITS}
    try:
        with OrderedSpill(local_work_dir(folder, out.version)) as spill:  # under the data root when local
            written = _spill_patents(folder, sources, plan, spill, progress)
            log.info("release %s: writing %d patents in hash order (%d bytes spilled to %s)", out.version,
                     len(spill), spill.bytes, spill.directory)
            for pid, split, keep, origins, members in spill.drain():
                placed = writers[split].add_patent(pid, members)
                for s, source, m, (shard, index, offset) in zip(keep, origins, members, placed, strict=True):
                    row = manifest_row(s, s.meta, split, shard, index, offset, m)
                    row["caption_source"] = source
                    row["dup_group"] = plan.near.dup_group(pid) or None
                    row["excluded_by"] = plan.excluded_by.get(pid)
                    manifest.add(row)
                    tally.add(row)
        written.shards = {s: w.close() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    if written.duplicates:
        log.warning("release %s: %d duplicate samples dropped (kept the first; listed in stats.json)", out.version,
                    len(written.duplicates))
    return written


def _spill_patents(folder: DataFolder, sources: ReleaseSources, plan: ReleasePlan, spill: OrderedSpill,
                   progress: Progress) -> Written:
    """Each released patent's members into `spill` under its release order; duplicates and left-out samples listed."""
    options, caption_set = sources.options, sources.caption_set
    loaded: dict[str, dict[str, dict[str, Any]]] = {}

    def caption_of(s: SourceSample) -> dict[str, Any] | None:
        """The sample's row of the caption set (one source shard's captions in memory at a time)."""
        if caption_set is None:
            return None
        if s.source not in loaded:
            loaded.clear()
            loaded[s.source] = read_shard_captions(folder, options.profile, caption_set,
                                                   dt.date.fromisoformat(s.week), shard_number(s.source))
        return loaded[s.source].get(s.key)

    written = Written()
    first_key: dict[str, str] = {}
    first_patent: dict[str, str] = {}
    total = sum(i.samples for i in sources.inputs)
    progress(0, total)
    done = 0
    for item in sources.inputs:
        for group in group_patents(iter_source_samples(folder, options.profile, item)):
            pid, keep = group[0].patent_id, []
            for s in group:
                earlier = first_key.get(s.key) or first_patent.get(pid)
                if earlier is not None:
                    reason = "duplicate key" if s.key in first_key else "patent already released"
                    written.duplicates.append({"key": s.key, "patent_id": pid, "source_shard": s.source,
                                               "source_index": s.position, "reason": reason, "first_seen": earlier})
                    continue
                first_key[s.key] = s.source
                keep.append(s)
            done += len(group)
            if keep:
                first_patent[pid] = keep[0].source
            split = plan.split(pid)
            for s in keep:
                reason = plan.left_out_keys.get(s.key) or (EXCLUDED_DROPPED if split is None else None)
                if reason is not None:
                    written.left_out.append({"key": s.key, "patent_id": pid, "source_shard": s.source,
                                             "source_index": s.position, "reason": reason})
            keep = [s for s in keep if split is not None and s.key not in plan.left_out_keys]
            if keep and split is not None:
                written.released[pid] = split
                captions = [caption_of(s) for s in keep]
                members = [release_members(s, split, caption_set, c, plan.fields(pid))
                           for s, c in zip(keep, captions, strict=True)]
                origins = [caption_fields(caption_set, c).get("caption_source", METADATA_CAPTIONS) for c in captions]
                spill.add(release_order(pid), (pid, split, keep, origins, members))
            progress(done, total)
    return written
