"""A release's counts, kept one manifest row at a time, and the tables the card and the Prefect artifact show."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from designclip.pipeline.common.classes import us_design_class_titles
from designclip.pipeline.common.splits import SPLITS
from designclip.pipeline.render.patent_views import class_index

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


def human_size(n: float) -> str:
    """`12.3 MiB`: shard sizes as the card and the artifact show them."""
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
        lines.append(f"| {s} | {c['samples']} | {c['patents']} | {c['shards']} | {human_size(c['bytes'])} | "
                     f"{c['flagged']} | {c['unknown_cls']} |")
    return "\n".join(lines)


def count_table(title: str, counts: dict[str, dict[str, int]]) -> list[str]:
    """One counted column per split (values sorted, "(none)" last), as card lines."""
    lines = [f"| {title} | train | val | test | total |", "|---|---|---|---|---|"]
    for value in sorted(counts, key=lambda v: (v == "(none)", v)):
        c = counts[value]
        lines.append(f"| {value} | {c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} | {sum(c.values())} |")
    return lines


def class_table(counts: dict[str, dict[str, int]]) -> list[str]:
    """Samples per US design class and split, in `cls` order with the class titles, as card lines."""
    titles, index = us_design_class_titles(), class_index()
    lines = ["| cls | US class | title | train | val | test | total |", "|---|---|---|---|---|---|---|"]
    for code in sorted(counts, key=lambda c: (index.get(c, 999), c)):
        c = counts[code]
        lines.append(f"| {index.get(code, -1)} | {code} | {titles.get(code, 'unknown: not one of the 33 classes')} | "
                     f"{c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} | {sum(c.values())} |")
    return lines
