"""Split drawing sheets into their FIG.s: labels read where they are, the ink cut into one region per label (XY-cut,
nearest-label blobs as second try), the XML's FIG. list as constraint, and a flag on every view that is not sure."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from pipeline.fig_labels import FigLabel, read_sheet_labels
from pipeline.sheet_image import Box, union
from pipeline.xy_cut import xy_cut

SEGMENTER_VERSION = "2"
MASK_SCALE = 4


@dataclass(frozen=True)
class Region:
    """Where one FIG. is drawn; `method` says how we know, `flag` why a sample should be checked by a person."""

    fig: str | None
    sheet: int
    box: Box | None  # None: the sheet's whole drawing (its ink box)
    method: str  # "sheet" (one FIG. per sheet), "xycut" / "blobs" (cut between labels), "fallback" (whole sheet)
    flag: str | None = None
    label_box: Box | None = None  # the FIG.'s own label (erased from the view)
    label_text: str = ""
    erase: tuple[Box, ...] = ()  # every label-text component of the sheet, erased before cropping
    strays: tuple[str, ...] = ()  # labels on the sheet naming FIG.s the XML's FIG. list does not have


@dataclass
class SheetLayout:
    """What the segmenter learnt from one sheet: labels read, FIG.-like text not read, ink without label text."""

    sheet: int
    size: tuple[int, int]
    labels: list[FigLabel] = field(default_factory=list)
    unread: list[Box] = field(default_factory=list)
    strays: list[FigLabel] = field(default_factory=list)  # labels of FIG.s not in the patent's FIG. list
    ink: np.ndarray | None = None  # 1/MASK_SCALE ink mask, label text removed

    def label_for(self, fig: str) -> FigLabel | None:
        return next((lb for lb in self.labels if lb.fig == fig), None)

    def erase_boxes(self) -> tuple[Box, ...]:
        """The label texts to erase from the sheet: every label's components and every FIG.-like line not read."""
        return tuple(p for lb in self.labels + self.strays for p in lb.parts) + tuple(self.unread)

    def stray_figs(self) -> tuple[str, ...]:
        return tuple(lb.fig for lb in self.strays)


def sheet_ink(gray: Image.Image, erase: Sequence[Box], scale: int = MASK_SCALE) -> np.ndarray:
    """1/scale ink mask (a 1-px line still darkens its cell) with the label text blanked out."""
    small = np.asarray(gray.reduce(scale) if scale > 1 else gray)
    ink = (small < 235).astype(np.uint8)
    for x0, y0, x1, y1 in erase:
        ink[y0 // scale:-(-y1 // scale), x0 // scale:-(-x1 // scale)] = 0
    return ink


def analyse_sheet(gray: Image.Image, sheet: int, figs: Sequence[str] = (), expect: int | None = None) -> SheetLayout:
    """Labels (recognised on label-sized text lines only) and the label-free ink of one upright sheet.

    `figs` is the patent's FIG. list (labels naming others are dropped); `expect` the labels the sheet should hold
    when known (one per sheet when a patent has as many sheets as FIG.s), so reading stops once they are found.
    """
    hague = any("." in f for f in figs)
    text = read_sheet_labels(gray, hague=hague, expect=expect)
    labels = [lb for lb in text.labels if not figs or lb.fig in figs]
    strays = [lb for lb in text.labels if figs and lb.fig not in figs]
    layout = SheetLayout(sheet=sheet, size=gray.size, labels=labels, unread=text.unread, strays=strays)
    layout.ink = sheet_ink(gray, layout.erase_boxes())
    return layout


def _gap(a: Box, b: Box) -> float:
    dx = max(0, b[0] - a[2], a[0] - b[2])
    dy = max(0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, dy)


def _blobs(ink: np.ndarray, scale: int, join_px: int = 36) -> list[tuple[Box, int]]:
    """Ink connected components after closing gaps of ~join_px (broken lines, stippling), full-resolution boxes."""
    k = max(1, join_px // scale)
    joined = cv2.dilate(ink, np.ones((k, k), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    blobs = []
    pad = k // 2
    for i in range(1, count):
        x, y, w, h = (int(v) for v in stats[i][:4])
        box = (max(0, x + pad), max(0, y + pad), x + w - pad, y + h - pad)
        pixels = int(ink[box[1]:box[3], box[0]:box[2]].sum())
        if pixels:
            blobs.append(((box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale), pixels))
    return blobs


def _nearest_label_split(layout: SheetLayout, labels: Sequence[FigLabel]) -> list[Box] | None:
    """Each blob to the label nearest to it; None when a label is left with (almost) no drawing."""
    assert layout.ink is not None
    blobs = _blobs(layout.ink, MASK_SCALE)
    total = sum(p for _, p in blobs)
    if not blobs:
        return None
    owned: list[list[tuple[Box, int]]] = [[] for _ in labels]
    for box, pixels in blobs:
        owned[min(range(len(labels)), key=lambda i: _gap(box, labels[i].box))].append((box, pixels))
    if any(sum(p for _, p in blobs) < 0.01 * total for blobs in owned):
        return None
    return [union([b for b, _ in blobs]) for blobs in owned]


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: how much of one region another region's box covers."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 1.0


def credible(boxes: Sequence[Box], labels: Sequence[Box]) -> str | None:
    """Why regions cut from one sheet should not be trusted (None when they can be)."""
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if _overlap(a, b) > 0.05:
                return "regions of two FIG.s overlap"
    for box, label in zip(boxes, labels, strict=True):
        size = max(label[2] - label[0], label[3] - label[1])
        if _gap(box, label) > 4 * size:
            return "a FIG. label stands far from the drawing given to it"
    return None


def split_sheet(layout: SheetLayout, figs: Sequence[str]) -> tuple[dict[str, Box], str] | None:
    """One box per FIG. on the sheet (every FIG. labelled), and the method; None when no credible split exists."""
    labels = [layout.label_for(f) for f in figs]
    if any(lb is None for lb in labels) or layout.ink is None:
        return None
    # Labels of FIG.s missing from the XML's list still anchor a region, so their drawing joins no other FIG.
    anchors = [lb for lb in labels if lb is not None] + layout.strays
    for method in ("xycut", "blobs"):
        if method == "xycut":
            boxes = xy_cut(layout.ink, [lb.box for lb in anchors], MASK_SCALE)
        else:
            boxes = _nearest_label_split(layout, anchors)
        if boxes is not None and credible(boxes, [lb.box for lb in anchors]) is None:
            return dict(zip(figs, boxes[:len(figs)], strict=True)), method
    return None


def _place_unlabelled(figs: Sequence[str], found: dict[str, int], sheets: Sequence[int]) -> dict[str, int]:
    """Sheet of each FIG. whose label was not read, from the FIG. order (FIG.s run in order across sheets)."""
    placed = dict(found)
    labelled_sheets = set(found.values())
    for i, fig in enumerate(figs):
        if fig in placed:
            continue
        before = max((sheets.index(placed[f]) for f in figs[:i] if f in placed), default=0)
        after = min((sheets.index(placed[f]) for f in figs[i + 1:] if f in found), default=len(sheets) - 1)
        candidates = [sheets[j] for j in range(before, max(before, after) + 1)]
        empty = [s for s in candidates if s not in labelled_sheets and s not in placed.values()]
        placed[fig] = empty[0] if empty else candidates[0]
    return placed


def _one_per_sheet(figs: Sequence[str], sheets: Sequence[int], layouts: dict[int, SheetLayout]) -> list[Region]:
    """Equal counts: sheet k holds FIG. k; a label that names another FIG. of the list flags the view."""
    regions = []
    for fig, sheet in zip(figs, sheets, strict=True):
        layout = layouts[sheet]
        own = layout.label_for(fig)
        others = sorted({lb.fig for lb in layout.labels if lb.fig != fig})
        flag = None
        if own is None and others:
            flag = f"the sheet's label reads FIG. {others[0]}, expected FIG. {fig}"
        regions.append(Region(fig, sheet, None, "sheet", flag, own.box if own else None, own.text if own else "",
                              layout.erase_boxes()))
    return regions


def plan_regions(figs: Sequence[str], sheets: Sequence[int],
                 analyse: Callable[[int], SheetLayout]) -> list[Region]:
    """Every FIG. of a patent with its sheet and box; each FIG. once, none dropped, front page excluded by caller."""
    if not sheets:
        return []
    layouts = {s: analyse(s) for s in sheets}
    if not figs:
        return [Region(None, s, None, "fallback", "no FIG. descriptions in the XML", erase=layouts[s].erase_boxes())
                for s in sheets]
    if len(figs) == len(sheets):
        # Every sheet holds at least one FIG., so equal counts mean one FIG. per sheet, in order.
        return _one_per_sheet(figs, sheets, layouts)
    found: dict[str, int] = {}
    for s in sheets:
        for label in layouts[s].labels:
            if label.fig in figs and label.fig not in found:
                found[label.fig] = s
    placed = _place_unlabelled(figs, found, sheets)
    regions: list[Region] = []
    for s in sheets:
        layout = layouts[s]
        erase, strays = layout.erase_boxes(), layout.stray_figs()
        on_sheet = [f for f in figs if placed[f] == s]
        if not on_sheet:
            regions.append(Region(None, s, None, "fallback", "no FIG. label read on this sheet", erase=erase,
                                  strays=strays))
            continue
        labels = {f: layout.label_for(f) if found.get(f) == s else None for f in on_sheet}
        unlabelled = [f for f in on_sheet if labels[f] is None]
        if len(on_sheet) == 1:
            fig = on_sheet[0]
            own = labels[fig]
            flag = "FIG. label not read; placed by FIG. order" if unlabelled else None
            regions.append(Region(fig, s, None, "fallback" if flag else "sheet", flag, own.box if own else None,
                                  own.text if own else "", erase, strays))
            continue
        split = None if unlabelled else split_sheet(layout, on_sheet)
        for f in on_sheet:
            own = labels[f]
            if split is not None:
                regions.append(Region(f, s, split[0][f], split[1], None, own.box if own else None,
                                      own.text if own else "", erase, strays))
            else:
                reason = "FIG. label not read" if unlabelled else "regions could not be separated"
                regions.append(Region(f, s, None, "fallback", f"{reason}; whole sheet used",
                                      own.box if own else None, own.text if own else "", erase, strays))
    order = {f: i for i, f in enumerate(figs)}
    return sorted(regions, key=lambda r: (order.get(r.fig, len(order)) if r.fig else len(order), r.sheet))
