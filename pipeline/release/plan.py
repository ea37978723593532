"""Which split each patent goes to before any shard is written: near-duplicate groups, exclusions, fallbacks."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.common.fallbacks import MULTI_FIG_FALLBACK, multi_fig_fallbacks
from designclip.pipeline.common.splits import SPLITS, fill_empty_splits
from designclip.pipeline.release.exclusions import ExclusionList
from designclip.pipeline.release.options import SplitRule
from designclip.pipeline.render.near_duplicates import CONFIRM, LEGACY, THRESHOLD, NearDuplicates

EXCLUDED_DROPPED = "excluded patent or its near-duplicate (left out of the release)"


@dataclass(frozen=True)
class PlannedView:
    """One rendered view as its shard index lists it (no image needed)."""

    key: str
    patent_id: str
    sheet: int | None
    segmentation: str | None
    phash: str
    year: int
    phash256: str = ""  # "" in shards rendered before it was kept: the 64-bit rule applies
    flag: str = ""  # why the view is flagged ("" when not, or in shards rendered before the index kept it)


@dataclass
class ReleasePlan:
    """Per patent: its split (None: left out), near-duplicate group and exclusion; per key: why it is left out."""

    splits: dict[str, str | None]
    near: NearDuplicates
    excluded_by: dict[str, str] = field(default_factory=dict)
    left_out_keys: dict[str, str] = field(default_factory=dict)
    exclusions: list[dict[str, Any]] = field(default_factory=list)

    def split(self, patent_id: str) -> str | None:
        return self.splits.get(patent_id)

    def fields(self, patent_id: str) -> dict[str, str]:
        """The release-time json fields of the patent's samples."""
        return {"dup_group": self.near.dup_group(patent_id)}


def _group_split(rule: SplitRule, group: str, members: list[tuple[str, int]]) -> str:
    """A hash split names the group by its smallest patent id; a year split takes the most held-out member's."""
    if rule.by == "hash":
        return rule(group, None)
    return max((rule(p, y) for p, y in members), key=SPLITS.index)


def plan_release(views: Sequence[PlannedView], rule: SplitRule, exclusions: Sequence[ExclusionList] = (),
                 drop_excluded: bool = False, include_fallbacks: bool = False,
                 threshold: int = THRESHOLD, confirm: int = CONFIRM) -> ReleasePlan:
    """Group patents by near-duplicate views, give each group one split, send excluded groups to test (or out)."""
    left_out = {} if include_fallbacks else dict.fromkeys(multi_fig_fallbacks(views), MULTI_FIG_FALLBACK)
    kept = [v for v in views if v.key not in left_out]
    near = NearDuplicates.build(((v.patent_id, v.phash or "", v.phash256 or "") for v in kept), threshold, confirm)
    years = {v.patent_id: v.year for v in reversed(views)}  # the first input that has the patent
    members: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for pid in sorted(years):
        members[near.group(pid)].append((pid, years[pid]))
    listed: dict[str, list[str]] = defaultdict(list)
    for exclusion in exclusions:
        for pid in sorted(exclusion.patents & years.keys()):
            listed[pid].append(exclusion.name)
    splits: dict[str, str | None] = {}
    excluded_by: dict[str, str] = {}
    pulled: Counter[str] = Counter()  # per list: patents kept out only as near-duplicates of its patents
    group_splits: dict[str, str | None] = {}
    for group, pids in members.items():
        names = sorted({n for p, _ in pids for n in listed.get(p, [])})
        group_splits[group] = _group_split(rule, group, pids)
        if names:
            group_splits[group] = None if drop_excluded else "test"
            for p, _ in pids:
                excluded_by[p] = ",".join(listed[p]) if p in listed else "near-duplicate:" + ",".join(names)
                pulled.update([] if p in listed else names)
    if rule.by == "hash":  # a small release: every split with a share gets a group (hash splits stay otherwise)
        free = [g for g, pids in members.items() if not any(p in excluded_by for p, _ in pids)]
        group_splits |= fill_empty_splits({g: s for g, s in group_splits.items() if s is not None}, rule.ratios,
                                          movable=free)
    for group, pids in members.items():
        for p, _ in pids:
            splits[p] = group_splits[group]
    records = []
    for exclusion in exclusions:
        found = sum(exclusion.name in names for names in listed.values())
        records.append({**exclusion.record(), "in_release_inputs": found, "near_duplicates": pulled[exclusion.name],
                        "to": "left out" if drop_excluded else "test"})
    return ReleasePlan(splits, near, excluded_by, left_out, records)


def leakage_lines(leakage: dict[str, Any]) -> list[str]:
    """The card's section on near-duplicate groups, exclusion lists and samples left out."""
    near = leakage["near_duplicates"]
    lines = [
        "## Near-duplicates, exclusions, views left out",
        "",
        f"Patents with a near-duplicate view pair (a re-used or re-scanned drawing) form one group, and a group is in "
        f"one split (`dup_group`, in the json and the manifest). A pair is a candidate when the views' 64-bit "
        f"perceptual hashes (`json.phash`) are at most {near['threshold']} bits apart, and counts when their 256-bit "
        f"hashes of the ink box (`json.phash256`) are at most {near.get('confirm', CONFIRM)} bits apart (thresholds "
        f"measured in benchmarks/near_duplicates.py). Candidate pairs: {near.get('candidate_pairs', 0)}; "
        f"near-duplicate pairs: {near.get('near_duplicate_pairs', 0)}. Groups: {near['groups']}, holding "
        f"{near['patents_in_groups']} patents (largest: {near['largest_group']}). Near-duplicate view pairs in two "
        f"different splits, counted on the written release: {near['cross_split_pairs']}.",
        "",
    ]
    if near.get("unhashed_views"):
        lines += [f"Views without a hash (not grouped): {near['unhashed_views']}.", ""]
    if near.get("legacy_views"):
        lines += [f"Views without a 256-bit hash (rendered before it was kept; their pairs count at 64-bit distance "
                  f"<= {LEGACY}, the earlier, coarser rule): {near['legacy_views']}.", ""]
    if leakage["exclusions"]:
        lines += ["Kept out of train and val (`excluded_by` in the manifest), with their near-duplicates:", "",
                  "| list | patents listed | in this release's inputs | near-duplicates pulled along | now |",
                  "|---|---|---|---|---|"]
        lines += [f"| {e['name']} | {e['patents']} | {e['in_release_inputs']} | {e['near_duplicates']} | {e['to']} |"
                  for e in leakage["exclusions"]]
        if any(e["name"].startswith("deeppatent-") for e in leakage["exclusions"]):
            lines += ["", "The inputs cover DeepPatent grant weeks (2018-01 to 2019-06, and 2020-01-07), so its "
                      "test and val patents are excluded by default: a model trained on this release can be "
                      "scored on DeepPatent without having seen them."]
        lines.append("")
    if leakage["left_out"]:
        lines += [f"Samples left out: {leakage['left_out']}:", "",
                  *[f"- {n}: {reason}" for reason, n in sorted(leakage["left_out_by_reason"].items())],
                  "", "(listed in stats.json, `left_out`)", ""]
    else:
        lines += ["Samples left out: 0.", ""]
    return lines
