"""Score FIG. segmentation against hand-checked truth: each FIG.'s view must hold that FIG. and no other.

Two truth files feed it: tests/data/segmentation_truth.json (the 30 fixture patents, every sheet) and
tests/data/segmentation_truth_deeppatent2.json (15 harder DeepPatent2 sheets); each item is marked "tune" or
"holdout". A FIG. is right when its view is on the FIG.'s true sheet, the view's crop covers >= COVER_MIN of
the FIG.'s true drawing box, and it covers <= OTHER_MAX of every other FIG.'s true box on that sheet, not
counting the part of that other box lying inside this FIG.'s own true box (two drawings whose extents overlap,
like interleaved putter shafts, cannot be cut apart by any rectangle; a crop is judged only on what it adds).
The fixture boxes are full-resolution ink boxes like the DeepPatent2 ones, so one tolerance serves both sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.render.sheet_image import Box, ink_box, iou
from designclip.pipeline.render.view_image import crop_box
from PIL import Image

COVER_MIN = 0.90  # the view's crop covers at least this share of its FIG.'s true drawing box
OTHER_MAX = 0.10  # ... and at most this share of any other FIG.'s true box on the sheet
SHOWS_MIN = 0.50  # a view "shows" a FIG. when its crop covers at least this share of that FIG.'s true box
LABEL_MIN = 0.50  # a label is found when predicted and true label boxes share this much of the smaller one
PARTS = ("tune", "holdout")


@dataclass(frozen=True)
class TrueFig:
    """One FIG. of the ground truth: its sheet, drawing box and (when recorded) its printed label's box."""

    fig: str
    sheet: int
    box: Box
    label_box: Box | None = None


@dataclass(frozen=True)
class View:
    """One view the segmenter produced: which FIG. it claims, where it was cut and whether it is flagged."""

    fig: str | None
    sheet: int
    crop: Box
    flagged: bool
    label_box: Box | None = None
    method: str = ""


@dataclass
class Tally:
    """Counts for one set and part; `unflagged_wrong` must stay empty."""

    figs: int = 0
    right: int = 0
    views: int = 0
    flagged: int = 0
    labels: int = 0
    labels_found: int = 0
    wrong: list[str] = field(default_factory=list)
    unflagged_wrong: list[str] = field(default_factory=list)
    two_figs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    labels_missed: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.right / self.figs if self.figs else 0.0

    def merge(self, other: Tally) -> Tally:
        """A new tally holding both (for "all" = tune + holdout)."""
        out = Tally()
        for name in ("figs", "right", "views", "flagged", "labels", "labels_found"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        for name in ("wrong", "unflagged_wrong", "two_figs", "missing", "labels_missed"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def summary(self) -> str:
        labels = f"{self.labels_found}/{self.labels}" if self.labels else "n/a (no true label boxes)"
        return (f"FIG.s right {self.right}/{self.figs} = {100 * self.share:.1f}% | views {self.views}, "
                f"flagged {self.flagged}, UNFLAGGED WRONG {len(self.unflagged_wrong)}, "
                f"showing two FIG.s {len(self.two_figs)}, FIG.s missing {len(self.missing)} | labels found {labels}")


def _area(b: Box) -> int:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _meet(a: Box, b: Box) -> Box:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def coverage(crop: Box, box: Box) -> float:
    """Share of `box` inside `crop`."""
    return _area(_meet(crop, box)) / _area(box) if _area(box) else 0.0


def coverage_outside(crop: Box, other: Box, own: Box) -> float:
    """Share of `other` inside `crop` but outside `own` (what the crop adds of another FIG.)."""
    if not _area(other):
        return 0.0
    inside = _meet(crop, other)
    return (_area(inside) - _area(_meet(inside, own))) / _area(other)


def label_overlaps(pred: Box | None, true: Box | None) -> bool:
    """Predicted label box overlaps the true one by >= LABEL_MIN of the smaller box."""
    if pred is None or true is None:
        return False
    smaller = min(_area(pred), _area(true))
    return smaller > 0 and _area(_meet(pred, true)) >= LABEL_MIN * smaller


def judge(view: View, truth: Sequence[TrueFig]) -> str | None:
    """None when the view is right for the FIG. it claims, else why it is wrong."""
    if not view.fig:
        return "a view without a FIG."
    own = next((t for t in truth if t.fig == view.fig), None)
    if own is None:
        return f"FIG. {view.fig} is not in the truth"
    if own.sheet != view.sheet:
        return f"on sheet {view.sheet}, true sheet {own.sheet}"
    cover = coverage(view.crop, own.box)
    if cover < COVER_MIN:
        return f"crop covers {100 * cover:.0f}% of the FIG."
    for other in truth:
        if other.sheet == own.sheet and other.fig != own.fig:
            extra = coverage_outside(view.crop, other.box, own.box)
            if extra > OTHER_MAX:
                return f"crop also covers {100 * extra:.0f}% of FIG. {other.fig}"
    return None


def score_views(tally: Tally, item: str, truth: Sequence[TrueFig], views: Iterable[View]) -> None:
    """Add one patent's (or sheet's) views to the tally: FIG.s right, flags, two-FIG. views, labels found."""
    views = list(views)
    for view in views:
        tally.views += 1
        tally.flagged += view.flagged
        shows = [t.fig for t in truth if t.sheet == view.sheet and coverage(view.crop, t.box) >= SHOWS_MIN]
        name = f"{item} FIG. {view.fig or '-'} (sheet {view.sheet}, {view.method or '?'})"
        if len(shows) > 1:
            tally.two_figs.append(f"{name}: shows FIG.s {', '.join(shows)}")
        why = judge(view, truth)
        if why is not None and not view.flagged:
            tally.unflagged_wrong.append(f"{name}: {why}")
    for true in truth:
        tally.figs += 1
        mine = [v for v in views if v.fig == true.fig]
        if not mine:
            tally.missing.append(f"{item} FIG. {true.fig}")
            tally.wrong.append(f"{item} FIG. {true.fig}: no view")
        else:
            why = judge(mine[0], truth) or ("more than one view" if len(mine) > 1 else None)
            if why is None:
                tally.right += 1
            else:
                state = "flagged" if mine[0].flagged else "UNFLAGGED"
                tally.wrong.append(f"{item} FIG. {true.fig} ({mine[0].method or '?'}, {state}): {why}")
        if true.label_box is not None:
            tally.labels += 1
            if any(label_overlaps(v.label_box, true.label_box) for v in mine):
                tally.labels_found += 1
            else:
                found = [v.label_box for v in mine if v.label_box]
                tally.labels_missed.append(f"{item} FIG. {true.fig}: true {list(true.label_box)}, "
                                           f"ours {list(found[0]) if found else 'none'}")


def _box(value: Any) -> Box | None:
    return tuple(int(v) for v in value) if value else None  # type: ignore[return-value]


def fixture_truth(entry: dict[str, Any]) -> list[TrueFig]:
    """The FIG.s of one patent of segmentation_truth.json ("D00007" -> sheet 7)."""
    return [TrueFig(f["fig"], int(name.lstrip("D")), _box(f["box"]), _box(f.get("label_box")))  # type: ignore[arg-type]
            for name, figs in entry["sheets"].items() for f in figs]


def views_from_metas(metas: Iterable[dict[str, Any]]) -> list[View]:
    """Views from rendered samples' json (render_patent's ViewSample.meta)."""
    return [View(m.get("fig") or None, int(m["sheet"]), _box(m["crop_box"]), bool(m.get("flagged")),  # type: ignore[arg-type]
                 _box(m.get("label_box")), str(m.get("segmentation") or "")) for m in metas]


def sheet_truth(name: str, entry: dict[str, Any]) -> list[TrueFig]:
    """The FIG.s of one sheet of segmentation_truth_deeppatent2.json ("...-D00005" -> sheet 5)."""
    sheet = sheet_number(name)
    return [TrueFig(f["fig"], sheet, _box(f["box"]), _box(f.get("label_box")))  # type: ignore[arg-type]
            for f in entry["figs"]]


def sheet_number(name: str) -> int:
    """'USD0871717-20200107-D00003' -> 3."""
    tail = name.rsplit("-", 1)[-1]
    if not (tail.startswith("D") and tail[1:].isdigit()):
        raise ValueError(f"{name!r} is not a sheet name like USD0871717-20200107-D00003: name the sheet's PNG")
    return int(tail[1:])


def as_stored(entry: dict[str, Any]) -> dict[str, Any]:
    """A DeepPatent2 sheet's truth in the stored PNG frame (landscape sheets not turned; their labels at 90)."""
    if entry["orientation"] != "landscape":
        return entry
    height = entry["stored_size"][1]

    def back(b: list[int] | None) -> list[int] | None:
        return [b[1], height - b[2], b[3], height - b[0]] if b else b

    figs = [{**f, "box": back(f["box"]), "label_box": back(f.get("label_box")), "label_rotation": 90}
            for f in entry["figs"]]
    return {**entry, "orientation": "portrait", "size": entry["stored_size"], "figs": figs}


def segment_sheet(gray: Image.Image, sheet: int, figs: Sequence[str], margin: float) -> list[View]:
    """Run today's segmenter on one upright sheet holding `figs` (as an XML would list them), as render does."""
    from designclip.pipeline.render.placement import plan_regions
    from designclip.pipeline.render.segment import analyse_sheet

    regions = plan_regions(list(figs), [sheet], lambda s: analyse_sheet(gray, s, figs))
    whole = ink_box(gray) or (0, 0, *gray.size)
    return [View(r.fig or None, r.sheet, crop_box(r.box or whole, gray.size, margin), r.flag is not None,
                 _box(getattr(r, "label_box", None)), r.method) for r in regions]


# The first yardstick (region counts, IoU >= 0.3), kept for tests/pipeline/render/test_segment_truth.py.
@dataclass
class SegmentationScore:
    """Patents whose region count is right and FIG.s matched by IoU (the first, looser yardstick)."""

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
