"""What a release is built with: its frozen options, its version name, its split rule, and what changed since."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.common.splits import SPLITS, parse_ratios, split_of
from designclip.pipeline.release.exclusions import ExclusionError, ExclusionList, read_exclusion_file
from designclip.pipeline.render.near_duplicates import CONFIRM, HASH_BITS, THRESHOLD
from designclip.storage import layout
from designclip.storage.vocabulary import ReleaseError  # one class: storage raises it too

RELEASE_FORMAT = 3  # 2: near-duplicate split groups, exclusion lists, fallbacks left out; 3: hash order within a split
METADATA_CAPTIONS = "metadata"  # the caption the render stage wrote (json `caption_metadata`); no caption stage
SPLIT_BY = ("hash", "year")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class ReleaseExists(ReleaseError):
    """The version is taken by a finished release built from other inputs or settings."""


class NothingToRelease(ReleaseError):
    """No finished render week matches; the message says which stage to run."""


class CaptionsMissing(ReleaseError):
    """The chosen caption set does not cover every released shard; the message says which command fills it."""


def check_version(version: str) -> str:
    """A version names a folder and is cited in papers: letters, digits, `._+-`, no slashes."""
    if not _VERSION.match(version or "") or ".." in version:
        raise ReleaseError(f"release version {version!r}: use letters, digits and . _ + - (e.g. v1, 2025.1)")
    return version


@dataclass(frozen=True)
class ReleaseOptions:
    """Everything that changes a release's bytes; recorded in its marker so a version is never rebuilt differently."""

    profile: str = layout.DEFAULT_PROFILE
    years: tuple[int, ...] | None = None
    ratios: str = "90/5/5"
    split_by: str = "hash"
    val_year: int | None = None
    test_year: int | None = None
    shard_samples: int = layout.DEFAULT_SHARD_SAMPLES
    shard_bytes: int = layout.DEFAULT_SHARD_BYTES
    caption_source: str = "metadata"
    exclusions: tuple[ExclusionList, ...] = ()  # kept out of train/val with their near-duplicates
    drop_excluded: bool = False  # True: left out of the release; False: put in test
    include_fallbacks: bool = False  # release whole-sheet fallbacks of multi-FIG. sheets too
    near_duplicate_threshold: int = THRESHOLD

    def check(self) -> None:
        if self.split_by not in SPLIT_BY:
            raise ReleaseError(f"split_by {self.split_by!r}: use 'hash' (by patent id) or 'year' (by grant year)")
        if not _VERSION.match(self.caption_source or ""):
            raise ReleaseError(f"caption_source {self.caption_source!r}: use 'metadata' or a caption set id "
                               "(the folder name under captions/<profile>/, printed by `designclip caption`)")
        if self.shard_samples < 1 or self.shard_bytes < 1:
            raise ReleaseError("shard_samples and shard_bytes must be positive")
        if not 0 <= self.near_duplicate_threshold < HASH_BITS:
            raise ReleaseError(f"near_duplicate_threshold {self.near_duplicate_threshold}: give 0..{HASH_BITS - 1} "
                               f"bits (default {THRESHOLD}, measured in benchmarks/near_duplicates.py)")
        if self.split_by == "hash":
            if self.val_year is not None or self.test_year is not None:
                raise ReleaseError("val_year/test_year apply only with split_by='year'")
            try:
                parse_ratios(self.ratios)
            except ValueError as exc:
                raise ReleaseError(str(exc)) from exc
        elif self.val_year is not None and self.val_year == self.test_year:
            raise ReleaseError(f"val_year and test_year are both {self.val_year}; pick two different years")

    def settings(self) -> dict[str, Any]:
        """The normalised settings (only those that apply), as recorded in the release marker."""
        out: dict[str, Any] = {
            "format": RELEASE_FORMAT,
            "profile": self.profile,
            "years": sorted(set(self.years)) if self.years else None,
            "split_by": self.split_by,
            "shard_samples": self.shard_samples,
            "shard_bytes": self.shard_bytes,
            "caption_source": self.caption_source,
            "exclusions": [e.record() for e in self.exclusions],
            "excluded_to": "left out" if self.drop_excluded else "test",
            "include_fallbacks": self.include_fallbacks,
            "near_duplicate_threshold": self.near_duplicate_threshold,
            "near_duplicate_confirm": CONFIRM,  # 256-bit bits; a changed rule regroups patents
        }
        if self.split_by == "hash":
            out["ratios"] = {k: round(v, 12) for k, v in parse_ratios(self.ratios).items()}
        else:
            out |= {"val_year": self.val_year, "test_year": self.test_year}
        return out


@dataclass(frozen=True)
class SplitRule:
    """Which split a patent goes to: by a hash of its id, or by its grant year (latest years held out)."""

    by: str
    ratios: dict[str, float] = field(default_factory=dict)
    val_year: int | None = None
    test_year: int | None = None

    def __call__(self, patent_id: str, grant_year: int | None) -> str:
        if self.by == "hash":
            return split_of(patent_id, self.ratios)
        if grant_year == self.test_year:
            return "test"
        return "val" if grant_year == self.val_year else "train"

    def describe(self) -> str:
        if self.by == "hash":
            shares = "/".join(f"{100 * self.ratios[s]:g}" for s in SPLITS)
            return f"by patent: sha256 of the patent id, train/val/test = {shares} %"
        return f"by grant year: test = {self.test_year}, val = {self.val_year}, train = every other year"


def split_rule(options: ReleaseOptions, input_years: Iterable[int]) -> SplitRule:
    """The rule for these inputs; a year split defaults to test = latest year, val = the latest one before it."""
    if options.split_by == "hash":
        return SplitRule("hash", parse_ratios(options.ratios))
    years = sorted(set(input_years))
    if not years:
        raise ReleaseError("split_by='year' needs at least one input week")
    test = options.test_year if options.test_year is not None else years[-1]
    val = options.val_year
    if val is None:
        val = max((y for y in years if y < test), default=test - 1)
    if val == test:
        raise ReleaseError(f"val_year and test_year are both {val}; pick two different years")
    if not [y for y in years if y not in (val, test)]:
        raise ReleaseError(f"split_by='year' with test={test}, val={val} leaves train empty: the inputs cover only "
                           f"{', '.join(map(str, years))}; include more grant years or use split_by='hash'")
    return SplitRule("year", val_year=val, test_year=test)


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a finished release's fingerprint and the one asked for now, in words."""
    changes = []
    before, after = old.get("settings") or {}, new.get("settings") or {}
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            changes.append(f"{k}: {before.get(k)!r} -> {after.get(k)!r}")
    was = {i["week"]: i for i in old.get("inputs") or []}
    now = {i["week"]: i for i in new.get("inputs") or []}
    for label, weeks in (("weeks added", sorted(now.keys() - was.keys())),
                         ("weeks gone", sorted(was.keys() - now.keys())),
                         ("weeks re-rendered", sorted(w for w in was.keys() & now.keys() if was[w] != now[w]))):
        if weeks:
            changes.append(f"{label}: {', '.join(weeks)}")
    return changes


def release_options(years: Iterable[int] | None = None, exclude_patents: Iterable[str] | None = None,
                    **settings: Any) -> ReleaseOptions:
    """A release's options from the CLI's and flows' loose arguments, built once: `years` normalised, exclusion
    files read now (their ids and hash go into the settings); `caption_source` may still name a backend."""
    return ReleaseOptions(years=tuple(sorted(set(years))) if years else None,
                          exclusions=_exclusion_files(exclude_patents), **settings)


def _exclusion_files(paths: Iterable[str] | None) -> tuple[ExclusionList, ...]:
    """The user's exclusion files, read now (their ids and hash go into the release settings)."""
    try:
        return tuple(read_exclusion_file(p) for p in paths or [])
    except ExclusionError as exc:
        raise ReleaseError(str(exc)) from exc

