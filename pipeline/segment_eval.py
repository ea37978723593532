"""Score FIG. segmentation against a hand-made ground truth (FIG.s per sheet with rough boxes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.sheet_image import iou


@dataclass
class SegmentationScore:
    patents: int = 0
    patents_count_right: int = 0
    figs: int = 0
    figs_right: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def patent_share(self) -> float:
        return self.patents_count_right / self.patents if self.patents else 0.0

    @property
    def fig_share(self) -> float:
        return self.figs_right / self.figs if self.figs else 0.0


def score_patent(score: SegmentationScore, patent: str, truth: dict[str, Any], samples: Iterable[dict]) -> None:
    """Region count = views found by segmentation (whole-sheet fallbacks do not count as found regions).

    A FIG. is right when its view is on the true sheet and its drawing box matches the true box of that
    FIG. better than any other FIG. on the sheet (IoU >= 0.3); a fallback is right only on a one-FIG. sheet.
    """
    metas = list(samples)
    score.patents += 1
    found = [m for m in metas if m["segmentation"] != "fallback"]
    if len(found) == truth["number_of_figures"]:
        score.patents_count_right += 1
    else:
        score.wrong.append(f"{patent}: {len(found)} regions for {truth['number_of_figures']} FIG.s")
    by_fig = {m["fig"]: m for m in metas}
    for sheet_name, figs in truth["sheets"].items():
        sheet = int(sheet_name.lstrip("D"))
        for entry in figs:
            score.figs += 1
            meta = by_fig.get(entry["fig"])
            ok = meta is not None and meta["sheet"] == sheet
            if ok and len(figs) > 1:
                ours = tuple(meta["drawing_box"])
                overlaps = {e["fig"]: iou(ours, tuple(e["box"])) for e in figs}
                ok = meta["segmentation"] != "fallback" and overlaps[entry["fig"]] >= 0.3 and max(
                    overlaps, key=overlaps.__getitem__) == entry["fig"]
            if ok:
                score.figs_right += 1
            else:
                where = f"sheet {meta['sheet']} ({meta['segmentation']})" if meta else "missing"
                score.wrong.append(f"{patent} FIG. {entry['fig']}: true sheet {sheet}, ours {where}")
