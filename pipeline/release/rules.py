"""The release stage as pure code: split rules, shard cuts, member rewrites, manifest rows and the dataset card."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml
from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.common.splits import SPLITS, parse_ratios, split_of
from designclip.pipeline.release.exclusions import ExclusionList
from designclip.pipeline.render.near_duplicates import CONFIRM, HASH_BITS, THRESHOLD
from designclip.pipeline.render.patent_views import class_index
from designclip.pipeline.render.sample_json import FIELDS, card_features, normalise_sample_json

RELEASE_FORMAT = 3  # 2: near-duplicate split groups, exclusion lists, fallbacks left out; 3: hash order within a split
METADATA_CAPTIONS = "metadata"  # the caption the render stage wrote (json `caption_metadata`); no caption stage
SPLIT_BY = ("hash", "year")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_BLOCK = 512


class ReleaseError(ValueError):
    """Settings or inputs a release cannot be built from; the message says what to change."""


def check_version(version: str) -> str:
    """A version names a folder and is cited in papers: letters, digits, `._+-`, no slashes."""
    if not _VERSION.match(version or "") or ".." in version:
        raise ReleaseError(f"release version {version!r}: use letters, digits and . _ + - (e.g. v1, 2025.1)")
    return version


@dataclass(frozen=True)
class ReleaseOptions:
    """Everything that changes a release's bytes; recorded in its marker so a version is never rebuilt differently."""

    profile: str = "px512"
    years: tuple[int, ...] | None = None
    ratios: str = "90/5/5"
    split_by: str = "hash"
    val_year: int | None = None
    test_year: int | None = None
    shard_samples: int = 1000
    shard_bytes: int = 256 * 2**20
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


@dataclass
class SourceSample:
    """One sample read from a rendered week shard, its members as stored (png, json, cls, txt)."""

    key: str
    members: list[tuple[str, bytes]]
    source: str
    position: int
    week: str

    @cached_property
    def meta(self) -> dict[str, Any]:
        """The json member with every field of pipeline/render/sample_json.py, typed (older shards are filled in)."""
        body = next((d for n, d in self.members if n.endswith(".json")), None)
        if body is None:
            raise ReleaseError(f"{self.source}: sample {self.key} has no .json member")
        try:
            return normalise_sample_json(json.loads(body))
        except ValueError as exc:  # bad JSON, or a field pipeline/render/sample_json.py does not declare or type
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


def group_members(members: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """Adjacent members with the same key form one sample."""
    key: str | None = None
    group: list[tuple[str, bytes]] = []
    for name, data in members:
        k, _ = member_key(name)
        if k != key and group:
            yield key, group  # type: ignore[misc]
            group = []
        key = k
        group.append((name, data))
    if group:
        yield key, group  # type: ignore[misc]


def group_patents(samples: Iterable[SourceSample]) -> Iterator[list[SourceSample]]:
    """Adjacent samples of one patent (a patent's views are written together by the render stage)."""
    group: list[SourceSample] = []
    current: str | None = None
    for s in samples:
        pid = s.patent_id
        if group and pid != current:
            yield group
            group = []
        current = pid
        group.append(s)
    if group:
        yield group


def grant_year(meta: dict[str, Any], week: str) -> int:
    """The grant year from the sample's grant date (the week's year when missing)."""
    text = str(meta.get("grant_date") or week)
    return int(text[:4])


def dump_meta(meta: dict[str, Any]) -> bytes:
    """The json member exactly as the render stage writes it (designclip.storage.shards.sample_members)."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str).encode()


def caption_fields(caption_set: str | None, caption: dict[str, Any] | None) -> dict[str, Any]:
    """The json fields that say where `.txt` came from; a failed model caption falls back to the metadata one."""
    if caption_set is None:
        return {}
    if caption is None or not caption.get("caption"):
        reason = (caption or {}).get("error") or "no caption row"
        return {"caption_source": METADATA_CAPTIONS, "caption_error": f"{caption_set}: {reason}"}
    return {"caption_source": caption_set, "caption_model": caption.get("model_id"),
            "caption_prompt_version": caption.get("prompt_version")}


def release_members(sample: SourceSample, split: str, caption_set: str | None = None,
                    caption: dict[str, Any] | None = None,
                    fields: dict[str, Any] | None = None) -> list[tuple[str, bytes]]:
    """The sample's members for the release: json normalised with `split`, caption and release `fields` set
    (e.g. dup_group), `.txt` the chosen caption."""
    extra = caption_fields(caption_set, caption) or {"caption_source": METADATA_CAPTIONS}
    out = []
    for name, data in sample.members:
        if name.endswith(".json"):
            data = dump_meta(normalise_sample_json(sample.meta | {"split": split} | extra | (fields or {})))
        elif name.endswith(".txt") and extra.get("caption_source", METADATA_CAPTIONS) != METADATA_CAPTIONS:
            data = str(caption["caption"]).encode()  # type: ignore[index]
        out.append((name, data))
    return out


def tar_size(members: Iterable[tuple[str, bytes]]) -> int:
    """Bytes the members take in a tar: a 512-byte header each plus data padded to 512."""
    return sum(_BLOCK + -(-len(d) // _BLOCK) * _BLOCK for _, d in members)


def starts_new_shard(count: int, size: int, add_count: int, add_size: int, max_samples: int, max_bytes: int) -> bool:
    """Cut before a patent that would overflow the open shard; a patent bigger than the limits gets its own shard."""
    return count > 0 and (count + add_count > max_samples or size + add_size > max_bytes)


def manifest_row(sample: SourceSample, meta: dict[str, Any], split: str, shard: str, index: int, offset: int,
                 members: list[tuple[str, bytes]]) -> dict[str, Any]:
    """One manifest row: where a sample is in the release, what it shows, where it came from."""
    png = next((d for n, d in members if n.endswith(".png")), b"")
    meta = {k: None if v == "" else v for k, v in meta.items()}  # Parquet says "none" with null, the json with ""
    return {
        "key": sample.key,
        "split": split,
        "shard": shard,
        "shard_index": index,
        "offset": offset,
        "patent_id": meta.get("patent_id"),
        "fig": meta.get("fig"),
        "view": meta.get("view"),
        "view_direction": meta.get("view_direction"),
        "view_type": meta.get("view_type"),
        "cls": int(meta.get("cls", -1)),
        "uspc_class": meta.get("uspc_class"),
        "locarno_class": meta.get("locarno_class"),
        "grant_year": grant_year(meta, sample.week),
        "grant_date": meta.get("grant_date"),
        "segmentation": meta.get("segmentation"),
        "flagged": bool(meta.get("flagged")),
        "png_bytes": len(png),
        "sample_bytes": sum(len(d) for _, d in members),
        "source_week": sample.week,
        "source_shard": sample.source,
        "source_index": sample.position,
    }


def classes_document() -> dict[str, Any]:
    """classes.json: the 33 US design classes in `cls` order (entry i has cls i), and the Locarno class titles."""
    titles = us_design_class_titles()
    return {
        "us_design_classes": [{"cls": i, "code": code, "title": titles[code]} for code, i in class_index().items()],
        "unknown_cls": -1,
        "locarno": locarno_class_titles(),
    }


_COUNTED = ("uspc_class", "view", "view_direction", "view_type", "grant_year", "segmentation", "caption_source",
            "excluded_by")


class Tally:
    """The card's and stats' counts, kept one manifest row at a time (a release never holds all its rows)."""

    def __init__(self) -> None:
        self.samples: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self.unknown_cls: Counter[str] = Counter()
        self.patents: dict[str, set[str]] = {s: set() for s in SPLITS}
        self.by: dict[str, dict[str, Counter[str]]] = {c: defaultdict(Counter) for c in _COUNTED}
        self.dup_samples: Counter[str] = Counter()
        self.dup_groups: dict[str, set[str]] = {s: set() for s in SPLITS}

    def add(self, row: dict[str, Any]) -> None:
        split = row["split"]
        self.samples[split] += 1
        self.flagged[split] += bool(row["flagged"])
        self.unknown_cls[split] += row["cls"] == -1
        self.patents[split].add(row["patent_id"])
        if row.get("dup_group"):
            self.dup_samples[split] += 1
            self.dup_groups[split].add(row["dup_group"])
        for column in _COUNTED:
            value = row.get(column)
            self.by[column]["(none)" if value in (None, "") else str(value)][split] += 1

    def summary(self, shards: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """Per split: samples, patents, shards, bytes, flags; per US class, view, grant year, segmentation."""
        splits = {s: {"samples": self.samples[s], "patents": len(self.patents[s]), "shards": len(shards.get(s, [])),
                      "bytes": sum(x["bytes"] for x in shards.get(s, [])), "flagged": self.flagged[s],
                      "unknown_cls": self.unknown_cls[s], "dup_group_samples": self.dup_samples[s],
                      "dup_groups": len(self.dup_groups[s])} for s in SPLITS}
        return {
            "samples": sum(self.samples.values()),
            "patents": len(set().union(*self.patents.values())),
            "splits": splits,
            **{f"by_{c}": {k: dict(v) for k, v in self.by[c].items()} for c in _COUNTED},
            "flagged": sum(self.flagged.values()),
            "unknown_cls": sum(self.unknown_cls.values()),
            "dup_group_samples": sum(self.dup_samples.values()),
            "dup_groups": len(set().union(*self.dup_groups.values())),
        }


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


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def split_table(summary: dict[str, Any]) -> str:
    """The per-split markdown table (card and Prefect artifact)."""
    lines = ["| split | samples | patents | shards | size | flagged | unknown class |", "|---|---|---|---|---|---|---|"]
    for s in SPLITS:
        c = summary["splits"][s]
        lines.append(f"| {s} | {c['samples']} | {c['patents']} | {c['shards']} | {_human(c['bytes'])} | "
                     f"{c['flagged']} | {c['unknown_cls']} |")
    return "\n".join(lines)


def _count_table(title: str, counts: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"| {title} | train | val | test | total |", "|---|---|---|---|---|"]
    for value in sorted(counts, key=lambda v: (v == "(none)", v)):
        c = counts[value]
        lines.append(f"| {value} | {c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} | {sum(c.values())} |")
    return lines


def _class_table(counts: dict[str, dict[str, int]]) -> list[str]:
    titles, index = us_design_class_titles(), class_index()
    lines = ["| cls | US class | title | train | val | test | total |", "|---|---|---|---|---|---|---|"]
    for code in sorted(counts, key=lambda c: (index.get(c, 999), c)):
        c = counts[code]
        lines.append(f"| {index.get(code, -1)} | {code} | {titles.get(code, 'unknown: not one of the 33 classes')} | "
                     f"{c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} | {sum(c.values())} |")
    return lines


def card_front_matter(version: str, summary: dict[str, Any], split_dirs: dict[str, str]) -> list[str]:
    """The card's YAML header: one `configs` entry (data_files per split) and the typed features, for `datasets`."""
    splits = [s for s in SPLITS if s in split_dirs]
    meta = {
        "pretty_name": f"DesignCLIP design-patent views {version}",
        "license": "other",
        "license_name": "public-domain-us-government-works",
        "tags": ["design-patents", "uspto", "webdataset"],
        "configs": [{"config_name": version, "default": True,
                     "data_files": [{"split": s, "path": f"{split_dirs[s]}/*.tar"} for s in splits]}],
        "dataset_info": {"config_name": version, "features": card_features(),
                         "splits": [{"name": s, "num_examples": summary["splits"][s]["samples"]} for s in splits]},
    }
    return ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip("\n"), "---", ""]


def dataset_card(version: str, summary: dict[str, Any], settings: dict[str, Any], rule: str,
                 inputs: list[dict[str, Any]], not_included: list[dict[str, Any]], duplicates: int,
                 shard_urls: dict[str, str], wids_names: dict[str, str], size: int,
                 leakage: list[str] | None = None) -> str:
    """README.md of a release: contents, how to load it, the sample schema, statistics, provenance, licence."""
    train_url = shard_urls.get("train") or "train/{00000..00000}.tar"
    split_dirs = {s: url.rsplit("/", 1)[0] for s, url in shard_urls.items()}
    lines = [
        *card_front_matter(version, summary, split_dirs),
        f"# DesignCLIP design-patent views — release `{version}`",
        "",
        f"{summary['samples']} views (one PNG per FIG.) of {summary['patents']} US design patents, rendered at "
        f"{size}×{size} px, with metadata, US design class labels and captions, as WebDataset shards.",
        "",
        "## Splits",
        "",
        split_table(summary),
        "",
        f"Split rule: {rule}. Every view of a patent is in the same split and in one shard, adjacent.",
        "",
        *(leakage or []),
        "## Files",
        "",
        "| file | what |",
        "|---|---|",
        "| `{split}/00000.tar …` | WebDataset shards; at most "
        f"{settings['shard_samples']} samples and {_human(settings['shard_bytes'])} each |",
        "| `{split}/sizes.json` | samples per shard, as open_clip_train reads it |",
        "| `{split}.wids.json` | wids shard index (urls relative to this folder) |",
        "| `manifest.parquet` | one row per sample: key, split, shard, offset, patent, FIG., view, classes, grant "
        "year, segmentation, flags, sizes, source week shard |",
        "| `classes.json` | `cls` index → US design class code and title; Locarno class titles |",
        "| `stats.json` | the counts below, inputs, settings, duplicates dropped |",
        "| `SHA256SUMS` | `sha256sum -c SHA256SUMS` checks every file above |",
        "| `release.json` | written last: the release is complete when it exists (not in SHA256SUMS) |",
        "",
        "## Sample format",
        "",
        "Each sample is four tar members sharing a key such as `USD0915080_f1` (keys contain no dots):",
        "",
        "| member | content |",
        "|---|---|",
        f"| `.png` | the view, {size}×{size} 8-bit grayscale, drawing centred on white |",
        "| `.json` | metadata (UTF-8 JSON, fields below) |",
        "| `.cls` | the US design class id as ASCII digits (0–32, -1 when unknown; see classes.json) |",
        f"| `.txt` | the caption (source: `{settings['caption_source']}`) |",
        "",
        "Every json field is always present with one type (none: `\"\"`, `-1`, `[]` or `false`, never null):",
        "",
        "| json field | type | meaning |",
        "|---|---|---|",
        *[f"| {f.name} | {f.kind} | {f.doc} |" for f in FIELDS],
        "",
        "## Loading",
        "",
        "Hugging Face `datasets` (the YAML header of this file gives the splits and the typed features):",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder")  # a DatasetDict: ' + ", ".join(f'ds["{s}"]' for s in split_dirs),
        'sample = ds["train"][0]  # ["png"]: PIL image, ["json"]: dict, ["cls"]: int, ["txt"]: str',
        "```",
        "",
        "or from the shard files (`features=` is optional: without it `datasets` guesses the types from the first 5 "
        "samples of one shard; with it every field has the type listed above):",
        "",
        "```python",
        "from datasets import load_dataset, load_dataset_builder",
        'features = load_dataset_builder("path/to/this/folder").info.features',
        'ds = load_dataset("webdataset", data_files={'
        + ", ".join(f'"{s}": "path/to/this/folder/{d}/*.tar"' for s, d in split_dirs.items())
        + "}, features=features)",
        "```",
        "",
        "webdataset:",
        "",
        "```python",
        "import webdataset as wds",
        f'ds = wds.WebDataset("{train_url}", shardshuffle=False).decode("pil")',
        'sample = next(iter(ds))  # sample["png"]: PIL image, ["cls"]: int, ["txt"]: str, ["json"]: dict',
        "```",
        "",
        "wids (random access; give the index's absolute path, wids copies shards to `$WIDS_CACHE`, default "
        "`/tmp/_wids_cache`, named by their url):",
        "",
        "```python",
        "import os, wids",
        f'ds = wids.ShardListDataset(os.path.abspath("{wids_names.get("train", "train.wids.json")}"))',
        'sample = ds[0]  # {".png": ..., ".json": ..., ".cls": ..., ".txt": ..., "__key__": ...}',
        "```",
        "",
        "open_clip_train (reads `txt` as the caption and `png` as the image; the size comes from sizes.json):",
        "",
        "```bash",
        f'python -m open_clip_train.main --dataset-type webdataset --train-data "{train_url}" \\',
        "    --model RN50 --batch-size 64 --workers 4",
        "```",
        "",
        "## Statistics",
        "",
        *_class_table(summary["by_uspc_class"]),
        "",
        *_count_table("view", summary["by_view"]),
        "",
        *_count_table("view direction", summary["by_view_direction"]),
        "",
        *_count_table("view type", summary["by_view_type"]),
        "",
        *_count_table("grant year", summary["by_grant_year"]),
        "",
        *_count_table("segmentation", summary["by_segmentation"]),
        "",
        *_count_table("caption source", summary.get("by_caption_source", {})),
        "",
        f"Flagged views (whole sheet kept because the FIG. could not be cut out with confidence): "
        f"{summary['flagged']}. Views without one of the 33 US design classes (`cls` = -1): "
        f"{summary['unknown_cls']}.",
        "",
        "## Inputs",
        "",
        "| week | render marker | samples |",
        "|---|---|---|",
        *[f"| {i['week']} | `{i['marker']}` | {i['samples']} |" for i in inputs],
        "",
    ]
    if not_included:
        lines += ["Not included:", "", *[f"- {n['week']}: {n['reason']}" for n in not_included], ""]
    if duplicates:
        lines += [f"Duplicates dropped (a key or patent already taken from an earlier input): {duplicates}; "
                  "listed in stats.json.", ""]
    lines += [
        "Settings:",
        "",
        "```json",
        json.dumps(settings, indent=2, sort_keys=True),
        "```",
        "",
        "## Source and licence",
        "",
        "Source: USPTO bulk data, \"Patent Grant Full Text Data with Embedded TIFF Images\" (weekly design grants): "
        "the drawings are cropped per FIG. from the TIFF sheets; the metadata comes from the grant XML.",
        "",
        "USPTO patent documents (text and drawings) are works of the US government and in the public domain in "
        "the United States (17 U.S.C. § 105). Designs shown may still be protected as patents or trademarks; "
        "this data set is for research on design retrieval and classification.",
        "",
    ]
    return "\n".join(lines)
