"""The release task: finished render weeks -> one immutable, versioned, checksummed WebDataset release."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from designclip.pipeline.common.splits import SPLITS, hash_unit
from designclip.pipeline.release.exclusions import (
    ExclusionError,
    ExclusionList,
    default_exclusions,
    read_exclusion_file,
)
from designclip.pipeline.release.plan import EXCLUDED_DROPPED, PlannedView, ReleasePlan, leakage_lines, plan_release
from designclip.pipeline.release.rules import (
    METADATA_CAPTIONS,
    ReleaseError,
    ReleaseOptions,
    SourceSample,
    SplitRule,
    Tally,
    caption_fields,
    check_version,
    classes_document,
    dataset_card,
    fingerprint_changes,
    group_patents,
    manifest_row,
    release_members,
    split_rule,
)
from designclip.pipeline.render.near_duplicates import LEGACY, THRESHOLD
from designclip.storage import layout
from designclip.storage.captions import (
    CaptionStorageError,
    ShardRef,
    captions_fingerprint,
    read_shard_captions,
    resolve_caption_set,
)
from designclip.storage.folder import DataFolder
from designclip.storage.release import (
    ManifestWriter,
    ReleaseFolder,
    ReleaseInput,
    iter_index_rows,
    iter_source_samples,
    release_inputs,
    shard_number,
    unrendered_weeks,
)
from designclip.storage.release_spill import OrderedSpill
from designclip.tasks.progress import CountProgress
from prefect import get_run_logger, task

OnShard = Callable[[str, dict[str, Any]], None]
ORDER_SALT = "release-order/"  # not the split hash's salt: the order within a split is its own permutation


class ReleaseExists(ReleaseError):
    """The version is taken by a finished release built from other inputs or settings."""


class NothingToRelease(ReleaseError):
    """No finished render week matches; the message says which stage to run."""


class CaptionsMissing(ReleaseError):
    """The chosen caption set does not cover every released shard; the message says which command fills it."""


def _caption_set(folder: DataFolder, profile: str, caption_source: str) -> str | None:
    """None for the render stage's metadata captions, else the caption set id the name stands for."""
    if caption_source == METADATA_CAPTIONS:
        return None
    try:
        return resolve_caption_set(folder, profile, caption_source)
    except CaptionStorageError as exc:
        raise CaptionsMissing(str(exc)) from exc


def _captions_record(folder: DataFolder, profile: str, caption_set: str,
                     inputs: list[ReleaseInput]) -> dict[str, Any]:
    """The caption part of the fingerprint; every input shard must have finished captions."""
    refs = [ShardRef(i.week, shard_number(rel), rel) for i in inputs for rel in i.shards]
    record = captions_fingerprint(folder, profile, caption_set, refs)
    missing = record.pop("missing")
    if missing:
        weeks = sorted({m.split("/")[0] for m in missing})
        raise CaptionsMissing(f"caption set {caption_set} lacks {len(missing)} of {len(refs)} shards "
                              f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}; weeks {', '.join(weeks)})"
                              ": run `designclip caption` for those weeks with the same captioner first")
    return record


def build_release(version: str, data_root: str, profile: str = "px512", years: list[int] | None = None,
                  ratios: str = "90/5/5", split_by: str = "hash", shard_samples: int = 1000,
                  shard_bytes: int = 256 * 2**20, caption_source: str = "metadata", val_year: int | None = None,
                  test_year: int | None = None, exclude_patents: list[str] | None = None, drop_excluded: bool = False,
                  include_fallbacks: bool = False, near_duplicate_threshold: int = THRESHOLD,
                  logger: logging.Logger | logging.LoggerAdapter | None = None,
                  on_shard: OnShard | None = None) -> dict[str, Any]:
    """Build `releases/{version}` from the finished render weeks; a finished identical release is skipped."""
    check_version(version)
    folder = DataFolder(data_root)
    caption_set = _caption_set(folder, profile, caption_source)
    options = ReleaseOptions(profile, tuple(sorted(set(years))) if years else None, ratios, split_by, val_year,
                             test_year, shard_samples, shard_bytes, caption_set or METADATA_CAPTIONS,
                             _exclusion_files(exclude_patents), drop_excluded, include_fallbacks,
                             near_duplicate_threshold)
    options.check()
    log = logger or logging.getLogger("designclip.release")
    year_set = set(years) if years else None
    inputs = release_inputs(folder, profile, year_set)
    options = replace(options, exclusions=options.exclusions + _default_exclusions(version, inputs, options, log))
    fingerprint: dict[str, Any] = {"inputs": [i.record() for i in inputs], "settings": options.settings()}
    if caption_set is not None:
        fingerprint["captions"] = _captions_record(folder, profile, caption_set, inputs)
    out = ReleaseFolder(folder, version)
    finished = _finished_release(out, fingerprint, log)
    if finished is not None:
        return finished
    if not inputs:
        where = f" granted in {', '.join(map(str, sorted(year_set)))}" if year_set else ""
        raise NothingToRelease(f"no finished render weeks under profile {profile}{where}: "
                               "ingest and render weeks first")
    rule = split_rule(options, (i.week.year for i in inputs))
    if out.exists():
        log.warning("release %s: a half-written release (no %s) is removed and rebuilt", version,
                    layout.release_marker(version))
        out.remove()
    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    log.info("release %s: %d weeks, %d samples, split %s", version, len(inputs), sum(i.samples for i in inputs),
             rule.describe())
    plan = _plan(folder, options, inputs, rule, version, log)
    tally = Tally()
    with ManifestWriter() as manifest:
        shards, duplicates, left_out, released = _write_shards(folder, out, options, inputs, plan, log, on_shard,
                                                               manifest, tally, caption_set)
        out.write_manifest(manifest)
    summary = tally.summary(shards)
    leakage = _leakage(plan, left_out, released, version, log)
    not_included = [{"week": w.isoformat(), "reason": "not rendered"}
                    for w in unrendered_weeks(folder, profile, year_set)]
    stats = {"version": version, "settings": fingerprint["settings"], "split_rule": rule.describe(),
             "inputs": fingerprint["inputs"], "input_samples": sum(i.samples for i in inputs),
             "not_included": not_included, "duplicates": duplicates, "summary": summary, "shards": shards,
             "leakage": leakage, "left_out": left_out}
    marker = {
        "version": version,
        "fingerprint": fingerprint,
        "samples": summary["samples"],
        "patents": summary["patents"],
        "input_samples": stats["input_samples"],
        "duplicates": len(duplicates),
        "left_out": leakage["left_out"],
        "excluded_patents": leakage["excluded_patents"],
        "near_duplicates": {k: leakage["near_duplicates"][k] for k in ("groups", "cross_split_pairs")},
        "unknown_cls": summary["unknown_cls"],
        "not_included": not_included,
        "splits": summary["splits"],
        "sha256sums": _write_documents(out, stats, next((i.size for i in inputs if i.size), 0) or 0),
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "duration_s": round(time.perf_counter() - clock, 3),
    }
    out.write_marker(marker)
    for split in SPLITS:
        c = summary["splits"][split]
        log.info("release %s: %s %d samples of %d patents in %d shards", version, split, c["samples"], c["patents"],
                 c["shards"])
    return {**marker, "status": "done", "skipped": False, "path": out.url()}


def _finished_release(out: ReleaseFolder, fingerprint: dict[str, Any],
                      log: logging.Logger | logging.LoggerAdapter) -> dict[str, Any] | None:
    """The finished release when it matches (a no-op rerun); an error when the version was built differently."""
    marker = out.marker()
    if marker is None:
        return None
    if marker.get("fingerprint") == fingerprint:
        log.info("release %s: already built from the same inputs and settings, nothing to do", out.version)
        return {**marker, "status": "skipped", "skipped": True, "path": out.url()}
    changes = "; ".join(fingerprint_changes(marker.get("fingerprint") or {}, fingerprint))
    raise ReleaseExists(f"release {out.version!r} already exists ({out.url()}) and was built from other inputs or "
                        f"settings ({changes}). Releases are immutable: pick a new --version.")


def _write_documents(out: ReleaseFolder, stats: dict[str, Any], size: int) -> str:
    """sizes.json and wids indexes per split, classes.json, stats.json, README.md, then SHA256SUMS (its hash)."""
    shards = stats["shards"]
    for split in SPLITS:
        out.write_split_indexes(split, shards[split])
    out.write_json("classes.json", classes_document())
    out.write_json("stats.json", stats)
    out.write_bytes("README.md", dataset_card(
        stats["version"], stats["summary"], stats["settings"], stats["split_rule"], stats["inputs"],
        stats["not_included"], len(stats["duplicates"]), {s: _brace_urls(shards[s]) for s in SPLITS if shards[s]},
        {s: layout.release_wids_name(s) for s in SPLITS if shards[s]}, size,
        leakage=leakage_lines(stats["leakage"])).encode())
    return out.write_sums()


def _brace_urls(shards: list[dict[str, Any]]) -> str:
    """`train/{00000..00012}.tar`, the form open_clip_train and webdataset expand."""
    first, last = shards[0]["name"], shards[-1]["name"]
    folder, a = first.rsplit("/", 1)
    b = last.rsplit("/", 1)[1]
    return f"{folder}/{{{a[:-4]}..{b[:-4]}}}.tar"


def _exclusion_files(paths: list[str] | None) -> tuple[ExclusionList, ...]:
    """The user's exclusion files, read now (their ids and hash go into the release settings)."""
    try:
        return tuple(read_exclusion_file(p) for p in paths or [])
    except ExclusionError as exc:
        raise ReleaseError(str(exc)) from exc


def _default_exclusions(version: str, inputs: list[ReleaseInput], options: ReleaseOptions,
                        log: logging.Logger | logging.LoggerAdapter) -> tuple[ExclusionList, ...]:
    """The DeepPatent test/val lists when an input week is one of theirs (said in the log and on the card)."""
    chosen = {e.name for e in options.exclusions}
    lists = tuple(e for e in default_exclusions(i.week for i in inputs) if e.name not in chosen)
    for e in lists:
        log.info("release %s: covers DeepPatent grant weeks, so the %d %s patents and their near-duplicates are kept "
                 "out of train and val (%s)", version, len(e.patents), e.name,
                 "left out" if options.drop_excluded else "put in test")
    return lists


def _plan(folder: DataFolder, options: ReleaseOptions, inputs: list[ReleaseInput], rule: SplitRule, version: str,
          log: logging.Logger | logging.LoggerAdapter) -> ReleasePlan:
    """Every patent's split from the shard indexes alone: near-duplicate groups, exclusions, fallbacks left out."""
    columns = ("key", "patent_id", "sheet", "segmentation", "phash", "phash256", "flag")
    views = [PlannedView(r["key"], r["patent_id"], r["sheet"], r["segmentation"], r["phash"] or "", item.week.year,
                         r["phash256"] or "", r["flag"] or "")
             for item in inputs for r in iter_index_rows(folder, options.profile, item, columns)]
    plan = plan_release(views, rule, options.exclusions, options.drop_excluded, options.include_fallbacks,
                        options.near_duplicate_threshold)
    near = plan.near.summary()
    log.info("release %s: %d near-duplicate groups hold %d patents (largest %d; %d candidate view pairs within %d bits "
             "of the 64-bit hash, %d confirmed within %d bits of the 256-bit hash)", version, near["groups"],
             near["patents_in_groups"], near["largest_group"], near["candidate_pairs"], near["threshold"],
             near["near_duplicate_pairs"], near["confirm"])
    if near["legacy_views"]:
        log.warning("release %s: %d views have no 256-bit hash (shards rendered before it was kept); their pairs "
                    "count by the coarser 64-bit rule (<= %d bits), which links some distinct designs: re-render those "
                    "weeks", version, near["legacy_views"], LEGACY)
    if near["unhashed_views"]:
        log.warning("release %s: %d views have no perceptual hash (rendered before hashes were kept, or blank); "
                    "re-render those weeks to group their near-duplicates", version, near["unhashed_views"])
    return plan


def _leakage(plan: ReleasePlan, left_out: list[dict[str, Any]], released: dict[str, str], version: str,
             log: logging.Logger | logging.LoggerAdapter) -> dict[str, Any]:
    """Near-duplicate groups, cross-split pairs (counted on what was written), exclusions, samples left out."""
    cross = plan.near.cross_split_pairs(released)
    if cross:
        raise ReleaseError(f"release {version}: {cross} near-duplicate view pairs straddle two splits; this is a bug "
                           "in the split plan, please report it")
    groups = [{"group": g, "patents": m, "split": released.get(g)} for g, m in sorted(plan.near.members.items())]
    reasons = Counter(x["reason"] for x in left_out)
    if left_out:
        log.info("release %s: %d samples left out (%s)", version, len(left_out),
                 "; ".join(f"{n} {r}" for r, n in reasons.items()))
    return {
        "near_duplicates": plan.near.summary() | {"cross_split_pairs": cross, "group_list": groups[:10_000]},
        "exclusions": plan.exclusions,
        "excluded_patents": len(plan.excluded_by),
        "left_out": len(left_out),
        "left_out_by_reason": dict(reasons),
        "left_out_patents": len({x["patent_id"] for x in left_out if x["patent_id"] not in released}),
    }


def release_order(patent_id: str) -> tuple[float, str]:
    """Where a patent goes in its split: a stable hash of its id, so shards and batches mix US classes (USPTO
    numbers a week's designs in class runs) and a rebuilt release is byte-identical."""
    return hash_unit(patent_id, ORDER_SALT), patent_id


def _write_shards(folder: DataFolder, out: ReleaseFolder, options: ReleaseOptions, inputs: list[ReleaseInput],
                  plan: ReleasePlan, log: logging.Logger | logging.LoggerAdapter, on_shard: OnShard | None,
                  manifest: ManifestWriter, tally: Tally, caption_set: str | None = None
                  ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]],
                             dict[str, str]]:
    """Read every input sample once in week/shard/position order (the first copy of a key or patent wins) into a
    local spill, then write each split's shards in `release_order` of patent, a patent's views together."""
    def shard_done(split: str, info: dict[str, Any]) -> None:
        log.info("release %s: %s %d samples of %d patents, %d bytes", out.version, info["name"], info["samples"],
                 info["patents"], info["bytes"])
        if on_shard is not None:
            on_shard(split, info)

    writers = {s: out.split_writer(s, options.shard_samples, options.shard_bytes, shard_done) for s in SPLITS}
    try:
        with OrderedSpill() as spill:
            duplicates, left_out, released = _spill_patents(folder, out, options, inputs, plan, log, spill,
                                                            caption_set)
            log.info("release %s: writing %d patents in hash order (%d bytes spilled to %s)", out.version,
                     len(spill), spill.bytes, spill.directory)
            for pid, split, keep, sources, members in spill.drain():
                placed = writers[split].add_patent(pid, members)
                for s, source, m, (shard, index, offset) in zip(keep, sources, members, placed, strict=True):
                    row = manifest_row(s, s.meta, split, shard, index, offset, m)
                    row["caption_source"] = source
                    row["dup_group"] = plan.near.dup_group(pid) or None
                    row["excluded_by"] = plan.excluded_by.get(pid)
                    manifest.add(row)
                    tally.add(row)
        shards = {s: w.close() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    if duplicates:
        log.warning("release %s: %d duplicate samples dropped (kept the first; listed in stats.json)", out.version,
                    len(duplicates))
    return shards, duplicates, left_out, released


def _spill_patents(folder: DataFolder, out: ReleaseFolder, options: ReleaseOptions, inputs: list[ReleaseInput],
                   plan: ReleasePlan, log: logging.Logger | logging.LoggerAdapter, spill: OrderedSpill,
                   caption_set: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Each released patent's members into `spill` under its release order; duplicates and left-out samples listed."""
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

    duplicates: list[dict[str, Any]] = []
    left_out: list[dict[str, Any]] = []
    released: dict[str, str] = {}
    first_key: dict[str, str] = {}
    first_patent: dict[str, str] = {}
    progress = CountProgress(f"release {out.version}", sum(i.samples for i in inputs), log, unit="samples")
    done = 0
    for item in inputs:
        for group in group_patents(iter_source_samples(folder, options.profile, item)):
            pid, keep = group[0].patent_id, []
            for s in group:
                earlier = first_key.get(s.key) or first_patent.get(pid)
                if earlier is not None:
                    reason = "duplicate key" if s.key in first_key else "patent already released"
                    duplicates.append({"key": s.key, "patent_id": pid, "source_shard": s.source,
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
                    left_out.append({"key": s.key, "patent_id": pid, "source_shard": s.source,
                                     "source_index": s.position, "reason": reason})
            keep = [s for s in keep if split is not None and s.key not in plan.left_out_keys]
            if keep and split is not None:
                released[pid] = split
                captions = [caption_of(s) for s in keep]
                members = [release_members(s, split, caption_set, c, plan.fields(pid))
                           for s, c in zip(keep, captions, strict=True)]
                sources = [caption_fields(caption_set, c).get("caption_source", METADATA_CAPTIONS) for c in captions]
                spill.add(release_order(pid), (pid, split, keep, sources, members))
            progress(done)
    return duplicates, left_out, released


@task(name="release", task_run_name="release-{version}")
def release_task(version: str, data_root: str, profile: str = "px512", years: list[int] | None = None,
                 ratios: str = "90/5/5", split_by: str = "hash", shard_samples: int = 1000,
                 shard_bytes: int = 256 * 2**20, caption_source: str = "metadata", val_year: int | None = None,
                 test_year: int | None = None, exclude_patents: list[str] | None = None,
                 drop_excluded: bool = False, include_fallbacks: bool = False) -> dict[str, Any]:
    """One release as a Prefect task (no retries: a failed release is rebuilt from scratch by the next run)."""
    return build_release(version, data_root, profile, years, ratios, split_by, shard_samples, shard_bytes,
                         caption_source, val_year, test_year, exclude_patents, drop_excluded, include_fallbacks,
                         logger=get_run_logger())
