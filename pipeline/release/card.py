"""A release's documents for people and loaders: classes.json and the dataset card (README.md with its YAML header)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from designclip.pipeline.common.classes import locarno_class_titles, us_design_class_titles
from designclip.pipeline.common.splits import SPLITS
from designclip.pipeline.release.tally import class_table, count_table, human_size, split_table
from designclip.pipeline.render.patent_views import class_index
from designclip.storage.sample_json import FIELDS, card_features


def classes_document() -> dict[str, Any]:
    """classes.json: the 33 US design classes in `cls` order (entry i has cls i), and the Locarno class titles."""
    titles = us_design_class_titles()
    return {
        "us_design_classes": [{"cls": i, "code": code, "title": titles[code]} for code, i in class_index().items()],
        "unknown_cls": -1,
        "locarno": locarno_class_titles(),
    }


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
                 leakage: list[str] | None = None, revised: list[dict[str, Any]] | None = None) -> str:
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
        f"{settings['shard_samples']} samples and {human_size(settings['shard_bytes'])} each |",
        "| `{split}/sizes.json` | samples per shard, as open_clip_train reads it |",
        "| `{split}.wids.json` | wids shard index (urls relative to this folder) |",
        "| `manifest.parquet` | one row per sample: key, split, shard, offset, patent, FIG., view, classes, grant "
        "year, segmentation, flags, sizes, source week shard |",
        "| `classes.json` | `cls` index → US design class code and title; Locarno class titles |",
        "| `stats.json` | the counts below, inputs, revised weeks, settings, duplicates dropped |",
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
        *class_table(summary["by_uspc_class"]),
        "",
        *count_table("view", summary["by_view"]),
        "",
        *count_table("view direction", summary["by_view_direction"]),
        "",
        *count_table("view type", summary["by_view_type"]),
        "",
        *count_table("grant year", summary["by_grant_year"]),
        "",
        *count_table("segmentation", summary["by_segmentation"]),
        "",
        *count_table("caption source", summary.get("by_caption_source", {})),
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
    lines += revised_lines(revised or [])
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


def revised_lines(revised: list[dict[str, Any]]) -> list[str]:
    """The weeks whose weekly archive the USPTO republished (`_r1`, `_r2`) after they were first ingested: this
    release holds the revision's views, the earlier archive's are gone."""
    if not revised:
        return []
    return ["Revised weeks (the USPTO republished the weekly archive; this release is built from the revision):", "",
            "| week | replaced archive | revision used |", "|---|---|---|",
            *[f"| {r['week']} | `{r['from']}` | `{r['to']}` |" for r in revised], ""]
