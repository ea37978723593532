"""Split drawing sheets into their FIG.s: labels from OCR, regions from ink blobs, the XML's FIG. list as constraint."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from pipeline.fig_labels import FigLabel, find_fig_labels
from pipeline.sheet_image import Box, iou, union

SEGMENTER_VERSION = "1"


@dataclass(frozen=True)
class Region:
    """Where one FIG. is drawn; `method` says how we know, `flag` why a sample should be checked by a person."""

    fig: str | None
    sheet: int
    box: Box | None  # None: the sheet's whole drawing (its ink box)
    method: str  # "sheet" (one FIG. per sheet), "ocr" (label + blobs), "fallback" (whole sheet)
    flag: str | None = None


@dataclass
class SheetLayout:
    """What the segmenter learnt from one sheet: labels read and ink blobs (upright full-resolution pixels)."""

    sheet: int
    size: tuple[int, int]
    labels: list[FigLabel] = field(default_factory=list)
    blobs: list[tuple[Box, int]] = field(default_factory=list)  # (box, ink pixel count)


def _gap(a: Box, b: Box) -> float:
    dx = max(0, b[0] - a[2], a[0] - b[2])
    dy = max(0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, dy)


def find_blobs(gray: Image.Image, labels: Sequence[FigLabel], scale: int = 3,
               join_px: int = 36) -> list[tuple[Box, int]]:
    """Ink connected components after closing gaps of ~join_px (broken lines, stippling), label text removed."""
    small = np.asarray(gray.reduce(scale) if scale > 1 else gray)
    ink = (small < 160).astype(np.uint8)
    for label in labels:
        x0, y0, x1, y1 = (v // scale for v in label.box)
        ink[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = 0
    k = max(1, join_px // scale)
    joined = cv2.dilate(ink, np.ones((k, k), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    blobs = []
    for i in range(1, count):
        x, y, w, h = (int(v) for v in stats[i][:4])
        # Undo the dilation margin so boxes hug the strokes.
        pad = k // 2
        box = (max(0, x + pad), max(0, y + pad), x + w - pad, y + h - pad)
        pixels = int(ink[box[1]:box[3], box[0]:box[2]].sum())
        if pixels:
            blobs.append(((box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale), pixels))
    return blobs


def analyse_sheet(gray: Image.Image, sheet: int, scale: int = 3) -> SheetLayout:
    """Labels (OCR, ~0.3 s a sheet) and ink blobs of one upright sheet."""
    labels = find_fig_labels(gray, scale=scale)
    return SheetLayout(sheet=sheet, size=gray.size, labels=labels, blobs=find_blobs(gray, labels, scale=scale))


def split_sheet(layout: SheetLayout, figs: Sequence[str]) -> dict[str, Box] | None:
    """Give each labelled FIG. on the sheet the blobs nearest its label; None when the result is not credible."""
    labels = {lb.fig: lb for lb in layout.labels if lb.fig in figs}
    if set(labels) != set(figs) or not layout.blobs:
        return None
    total_ink = sum(p for _, p in layout.blobs)
    owned: dict[str, list[tuple[Box, int]]] = {f: [] for f in figs}
    for box, pixels in layout.blobs:
        nearest = min(figs, key=lambda f: _gap(box, labels[f].box))
        owned[nearest].append((box, pixels))
    regions: dict[str, Box] = {}
    for fig, blobs in owned.items():
        if sum(p for _, p in blobs) < 0.01 * total_ink:
            return None  # a label with (almost) no drawing: the blobs went elsewhere
        regions[fig] = union([b for b, _ in blobs])
    boxes = list(regions.values())
    if any(iou(a, b) > 0.25 for i, a in enumerate(boxes) for b in boxes[i + 1:]):
        return None
    return regions


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


def plan_regions(figs: Sequence[str], sheets: Sequence[int],
                 analyse: Callable[[int], SheetLayout]) -> list[Region]:
    """Every FIG. of a patent with its sheet and box; each FIG. once, none dropped, front page excluded by caller."""
    if not sheets:
        return []
    if not figs:
        return [Region(None, s, None, "fallback", "no FIG. descriptions in the XML") for s in sheets]
    if len(figs) == len(sheets):
        # Every sheet holds at least one FIG., so equal counts mean one FIG. per sheet, in order.
        return [Region(f, s, None, "sheet") for f, s in zip(figs, sheets, strict=True)]
    layouts = {s: analyse(s) for s in sheets}
    found: dict[str, int] = {}
    for s in sheets:
        for label in sorted(layouts[s].labels, key=lambda lb: (lb.box[1], lb.box[0])):
            if label.fig in figs and label.fig not in found:
                found[label.fig] = s
    placed = _place_unlabelled(figs, found, sheets)
    regions: list[Region] = []
    for s in sheets:
        on_sheet = [f for f in figs if placed[f] == s]
        if not on_sheet:
            regions.append(Region(None, s, None, "fallback", "no FIG. label read on this sheet"))
            continue
        unlabelled = [f for f in on_sheet if f not in found]
        if len(on_sheet) == 1:
            flag = "FIG. label not read; placed by FIG. order" if unlabelled else None
            regions.append(Region(on_sheet[0], s, None, "fallback" if flag else "sheet", flag))
            continue
        split = None if unlabelled else split_sheet(layouts[s], on_sheet)
        for f in on_sheet:
            if split is not None:
                regions.append(Region(f, s, split[f], "ocr"))
            else:
                reason = "FIG. label not read" if unlabelled else "regions could not be separated"
                regions.append(Region(f, s, None, "fallback", f"{reason}; whole sheet used"))
    order = {f: i for i, f in enumerate(figs)}
    return sorted(regions, key=lambda r: (order.get(r.fig, len(order)) if r.fig else len(order), r.sheet))
