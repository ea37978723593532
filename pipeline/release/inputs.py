"""What a release is made from: its finished render weeks, its caption set, its fingerprint and its split plan."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from designclip.pipeline.common.stage import Logger
from designclip.pipeline.release.exclusions import ExclusionList, default_exclusions
from designclip.pipeline.release.options import (
    METADATA_CAPTIONS,
    CaptionsMissing,
    ReleaseOptions,
    SplitRule,
    check_version,
)
from designclip.pipeline.release.plan import PlannedView, ReleasePlan, plan_release
from designclip.pipeline.render.near_duplicates import LEGACY
from designclip.storage.captions import CaptionStorageError, ShardRef, captions_fingerprint, resolve_caption_set
from designclip.storage.folder import DataFolder
from designclip.storage.release import ReleaseInput, iter_index_rows, release_inputs, shard_number


@dataclass(frozen=True)
class ReleaseSources:
    """A release's resolved options (caption set id, default exclusion lists added), inputs and fingerprint."""

    version: str
    options: ReleaseOptions
    caption_set: str | None  # None: the render stage's metadata captions
    inputs: list[ReleaseInput]
    fingerprint: dict[str, Any]
    default_lists: tuple[ExclusionList, ...]  # the DeepPatent lists added because an input week is one of theirs

    @property
    def years(self) -> set[int] | None:
        return set(self.options.years) if self.options.years else None


def release_sources(folder: DataFolder, version: str, options: ReleaseOptions) -> ReleaseSources:
    """Check the version and options, resolve the caption set, list the inputs, and fingerprint them all."""
    check_version(version)
    caption_set = _caption_set(folder, options.profile, options.caption_source)
    options = replace(options, caption_source=caption_set or METADATA_CAPTIONS)
    options.check()
    inputs = release_inputs(folder, options.profile, set(options.years) if options.years else None)
    chosen = {e.name for e in options.exclusions}
    lists = tuple(e for e in default_exclusions(i.week for i in inputs) if e.name not in chosen)
    options = replace(options, exclusions=options.exclusions + lists)
    fingerprint: dict[str, Any] = {"inputs": [i.record() for i in inputs], "settings": options.settings()}
    if caption_set is not None:
        fingerprint["captions"] = _captions_record(folder, options.profile, caption_set, inputs)
    return ReleaseSources(version, options, caption_set, inputs, fingerprint, lists)


def legacy_fingerprint(folder: DataFolder, sources: ReleaseSources) -> dict[str, Any]:
    """The fingerprint as releases built before run times were left out of input hashes recorded it (the bytes of
    the render and caption markers): a release built so from these same markers is this release."""
    out: dict[str, Any] = {"inputs": [i.record(legacy=True) for i in sources.inputs],
                           "settings": sources.fingerprint["settings"]}
    if sources.caption_set is not None:
        refs = [ShardRef(i.week, shard_number(rel), rel) for i in sources.inputs for rel in i.shards]
        record = captions_fingerprint(folder, sources.options.profile, sources.caption_set, refs, legacy=True)
        record.pop("missing")
        out["captions"] = record
    return out


def same_release(folder: DataFolder, marker: dict[str, Any] | None, sources: ReleaseSources) -> bool:
    """Whether a finished release's marker was built from exactly these sources (also as recorded before)."""
    if marker is None:
        return False
    built = marker.get("fingerprint")
    return built == sources.fingerprint or built == legacy_fingerprint(folder, sources)


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


def log_default_lists(sources: ReleaseSources, log: Logger) -> None:
    """Say when the DeepPatent test/val lists apply (an input week is one of theirs); the card says it too."""
    for e in sources.default_lists:
        log.info("release %s: covers DeepPatent grant weeks, so the %d %s patents and their near-duplicates are kept "
                 "out of train and val (%s)", sources.version, len(e.patents), e.name,
                 "left out" if sources.options.drop_excluded else "put in test")


def plan_splits(folder: DataFolder, sources: ReleaseSources, rule: SplitRule, log: Logger) -> ReleasePlan:
    """Every patent's split from the shard indexes alone: near-duplicate groups, exclusions, fallbacks left out."""
    options, version = sources.options, sources.version
    columns = ("key", "patent_id", "sheet", "segmentation", "phash", "phash256", "flag")
    views = [PlannedView(r["key"], r["patent_id"], r["sheet"], r["segmentation"], r["phash"] or "", item.week.year,
                         r["phash256"] or "", r["flag"] or "")
             for item in sources.inputs for r in iter_index_rows(folder, options.profile, item, columns)]
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
