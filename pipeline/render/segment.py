"""Split drawing sheets into their FIG.s: labels read where they are, the ink cut into one region per label (XY-cut,
nearest-label blobs as second try), the XML's FIG. list as constraint, and a flag on every view that is not sure."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from designclip.pipeline.render.fig_labels import FigLabel, read_sheet_labels
from designclip.pipeline.render.sheet_image import Box
from designclip.pipeline.render.xy_cut import xy_cut
from PIL import Image

SEGMENTER_VERSION = "2"
# In the flag of a whole-sheet view whose sheet also shows other FIG.s' labels: the view holds several FIG.s.
MASK_SCALE = 4


@dataclass(frozen=True)
class Region:
    """Where one FIG. is drawn; `method` says how we know, `flag` why a sample should be checked by a person."""

    fig: str | None
    sheet: int
    box: Box | None  # None: the sheet's whole drawing (its ink box)
    method: str  # "sheet" (one FIG. per sheet), "xycut" / "blobs" / "masked" (between labels), "fallback"
    flag: str | None = None
    label_box: Box | None = None  # the FIG.'s own label (erased from the view)
    label_text: str = ""
    erase: tuple[Box, ...] = ()  # every label-text component of the sheet, erased before cropping
    strays: tuple[str, ...] = ()  # labels on the sheet naming FIG.s the XML's FIG. list does not have
    hide: np.ndarray | None = field(default=None, compare=False)  # 1/MASK_SCALE mask of other FIG.s' ink


@dataclass
class SheetLayout:
    """What the segmenter learnt from one sheet: labels read, FIG.-like text not read, ink without label text."""

    sheet: int
    size: tuple[int, int]
    labels: list[FigLabel] = field(default_factory=list)
    unread: list[Box] = field(default_factory=list)
    strays: list[FigLabel] = field(default_factory=list)  # labels of FIG.s not in the patent's FIG. list
    ink: np.ndarray | None = None  # 1/MASK_SCALE ink mask, label text removed
    fine: np.ndarray | None = None  # the same, down to single dots (dotted lines): for region boxes, not for cuts

    def label_for(self, fig: str) -> FigLabel | None:
        return next((lb for lb in self.labels if lb.fig == fig), None)

    def erase_boxes(self) -> tuple[Box, ...]:
        """The label texts to erase from the sheet: every label's components and every FIG.-like line not read."""
        return tuple(p for lb in self.labels + self.strays for p in lb.parts) + tuple(self.unread)

    def stray_figs(self) -> tuple[str, ...]:
        return tuple(lb.fig for lb in self.strays)


def sheet_ink(gray: Image.Image, erase: Sequence[Box], scale: int = MASK_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """1/scale ink masks with the label text blanked out, from one downscale: lines (a 1-px line still darkens its
    cell below 235) and fine ink (a single dot darkens it only below 250)."""
    small = np.asarray(gray.reduce(scale) if scale > 1 else gray)
    masks = (small < 235).astype(np.uint8), (small < 250).astype(np.uint8)
    for x0, y0, x1, y1 in erase:
        for ink in masks:
            ink[y0 // scale:-(-y1 // scale), x0 // scale:-(-x1 // scale)] = 0
    return masks


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
    layout.ink, layout.fine = sheet_ink(gray, layout.erase_boxes())
    return layout


def _gap(a: Box, b: Box) -> float:
    dx = max(0, b[0] - a[2], a[0] - b[2])
    dy = max(0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, dy)


@dataclass
class BlobSplit:
    """Blobs given to their nearest label: a box per label, the other labels' ink to hide, and how sure it is."""

    boxes: list[Box]
    hide: list[np.ndarray]  # per label: 1/MASK_SCALE mask of ink given to other labels
    ambiguous: bool  # some large blob lies almost as near to a second label
    matched: bool = False  # big blobs were matched one-to-one with the labels (nearest left a label empty)


def _label_distances(xs: np.ndarray, ys: np.ndarray, box: Box, scale: int) -> np.ndarray:
    """Distance (mask pixels) from each ink pixel to a label box."""
    x0, y0, x1, y1 = (v / scale for v in box)
    dx = np.maximum(0, np.maximum(x0 - xs, xs - x1))
    dy = np.maximum(0, np.maximum(y0 - ys, ys - y1))
    return np.hypot(dx, dy)


def nearest_label_split(ink: np.ndarray, labels: Sequence[Box], scale: int = MASK_SCALE,
                        join_px: int = 36) -> BlobSplit | None:
    """Ink blobs (gaps of ~join_px closed: broken lines, stippling) each to the label its ink comes nearest to.

    Distances run from a label to the blob's ink pixels, not its box, so a long shaft that reaches past another
    drawing's label still goes to its own. None when a label is left with (almost) no drawing.
    """
    k = max(1, join_px // scale)
    count, comp = cv2.connectedComponents(cv2.dilate(ink, np.ones((k, k), np.uint8)), connectivity=8)
    ys, xs = np.nonzero(ink)
    if len(xs) == 0 or not labels:
        return None
    blob_of = comp[ys, xs]
    order = np.argsort(blob_of, kind="stable")
    blob_sorted = blob_of[order]
    starts = np.flatnonzero(np.r_[True, blob_sorted[1:] != blob_sorted[:-1]])
    blob_ids = blob_sorted[starts]
    sizes = np.diff(np.r_[starts, len(order)])
    dist = np.stack([np.minimum.reduceat(_label_distances(xs, ys, box, scale)[order], starts) for box in labels])
    owner = dist.argmin(axis=0)
    ambiguous = False
    if len(labels) > 1:
        near = np.sort(dist, axis=0)
        big = sizes >= 0.02 * len(xs)
        ambiguous = bool(np.any(big & (near[1] < 1.5 * near[0] + 2 * k)))
    matched = False
    ink_per_label = np.bincount(owner, weights=sizes, minlength=len(labels))
    if ink_per_label.min() < 0.01 * len(xs):
        # A label nearer to its neighbour's drawing than to its own: with as many big blobs as labels, match them
        # one to one (least total distance) and give each small blob to the big blob nearest to it.
        match = _match_big_blobs(dist, sizes, xs, ys, order, starts, len(xs))
        if match is None:
            return None
        owner, ambiguous, matched = match[0], match[1], True
    owner_of_pixel = np.zeros(count, dtype=np.int64) - 1
    owner_of_pixel[blob_ids] = owner
    pixel_owner = owner_of_pixel[blob_of]
    boxes, hide = [], []
    for i in range(len(labels)):
        mine = pixel_owner == i
        if mine.sum() < 0.01 * len(xs):
            return None
        boxes.append((int(xs[mine].min()) * scale, int(ys[mine].min()) * scale, (int(xs[mine].max()) + 1) * scale,
                      (int(ys[mine].max()) + 1) * scale))
        others = np.flatnonzero((owner_of_pixel >= 0) & (owner_of_pixel != i))
        hide.append(np.isin(comp, others).astype(np.uint8))
    return BlobSplit(boxes, hide, ambiguous, matched)


def _match_big_blobs(dist: np.ndarray, sizes: np.ndarray, xs: np.ndarray, ys: np.ndarray, order: np.ndarray,
                     starts: np.ndarray, total: int) -> tuple[np.ndarray, bool] | None:
    """Owner label per blob when every label must get a big blob (>= 3 % of the ink), and whether that is unsure.

    As many big blobs as labels: the one-to-one match of least total distance (unsure when the runner-up is
    close). More big blobs than labels: nearest first, then each label left empty takes the big blob that costs
    least to move from a label holding several (always unsure: flagged).
    """
    labels = dist.shape[0]
    big = np.flatnonzero(sizes >= 0.03 * total)
    if len(big) < labels:
        return None
    owner = dist.argmin(axis=0)
    if len(big) == labels and labels <= 6:
        costs = sorted((sum(dist[label, blob] for label, blob in zip(perm, big, strict=True)), perm)
                       for perm in itertools.permutations(range(labels)))
        ambiguous = len(costs) > 1 and costs[1][0] < 1.5 * costs[0][0] + 1
        owner[big] = costs[0][1]
    else:
        ambiguous = True
        for _ in range(labels):
            held = np.bincount(owner[big], minlength=labels)
            empty = np.flatnonzero(held == 0)
            if len(empty) == 0:
                break
            movable = [b for b in big if held[owner[b]] > 1]
            if not movable:
                return None
            label = int(empty[0])
            blob = min(movable, key=lambda b: dist[label, b] - dist[owner[b], b])
            owner[blob] = label
        if np.bincount(owner[big], minlength=labels).min() == 0:
            return None
    # Small blobs join the big blob whose box is nearest (broken-line dashes, shading strokes, stray marks).
    bx0 = np.minimum.reduceat(xs[order], starts)
    by0 = np.minimum.reduceat(ys[order], starts)
    bx1 = np.maximum.reduceat(xs[order], starts)
    by1 = np.maximum.reduceat(ys[order], starts)
    for blob in np.setdiff1d(np.arange(len(sizes)), big):
        gaps = [math.hypot(max(0, bx0[b] - bx1[blob], bx0[blob] - bx1[b]),
                           max(0, by0[b] - by1[blob], by0[blob] - by1[b])) for b in big]
        owner[blob] = owner[big[int(np.argmin(gaps))]]
    return owner, ambiguous


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box: how much of one region another region's box covers."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 1.0


def overlapping(boxes: Sequence[Box]) -> bool:
    """Whether the boxes of two regions overlap (so a rectangle crop of one would show part of the other)."""
    return any(_overlap(a, b) > 0.05 for i, a in enumerate(boxes) for b in boxes[i + 1:])


def far_label(boxes: Sequence[Box], labels: Sequence[Box]) -> bool:
    """Whether some label stands far from the drawing given to it (more than four label lengths away)."""
    return any(_gap(box, label) > 4 * max(label[2] - label[0], label[3] - label[1])
               for box, label in zip(boxes, labels, strict=True))


@dataclass(frozen=True)
class SheetSplit:
    """The regions of a multi-FIG. sheet: a box per FIG., how they were found, and ink to hide per FIG."""

    boxes: dict[str, Box]
    method: str  # "xycut": whitespace cuts; "blobs": nearest label; "masked": nearest label, boxes overlap
    hide: dict[str, np.ndarray] = field(default_factory=dict)  # 1/MASK_SCALE masks of other FIG.s' ink
    flag: str | None = None


def split_sheet(layout: SheetLayout, figs: Sequence[str],
                others: Sequence[FigLabel] | None = None) -> SheetSplit | None:
    """One region per FIG. on the sheet (every FIG. labelled); None when no credible split exists.

    Whitespace cuts first; else each ink blob goes to its nearest label, and where the resulting boxes overlap
    (a shaft reaching past another drawing) each view hides the other FIG.s' ink, flagged when a large blob is
    almost as near to a second label.
    """
    labels = [layout.label_for(f) for f in figs]
    if any(lb is None for lb in labels) or layout.ink is None:
        return None
    # Other labels on the sheet (FIG.s missing from the XML's list, or read on two sheets) still anchor a region,
    # so their drawing joins no FIG.'s view.
    others = layout.strays if others is None else others
    anchors = [lb.box for lb in labels if lb is not None] + [lb.box for lb in others]
    boxes = xy_cut(layout.ink, anchors, MASK_SCALE, fine=layout.fine)
    if boxes is not None and not overlapping(boxes) and not far_label(boxes, anchors):
        return SheetSplit(dict(zip(figs, boxes[:len(figs)], strict=True)), "xycut")
    blobs = nearest_label_split(layout.ink, anchors)
    if blobs is None or far_label(blobs.boxes, anchors):
        return None
    regions = dict(zip(figs, blobs.boxes[:len(figs)], strict=True))
    flag = "drawings interlock; each FIG.'s ink given to its nearest label" if blobs.ambiguous else None
    if blobs.matched:
        flag = "drawings matched one to one with labels that stand nearer another drawing" if blobs.ambiguous else None
    if not overlapping(blobs.boxes):
        return SheetSplit(regions, "matched" if blobs.matched else "blobs", flag=flag)
    return SheetSplit(regions, "masked", dict(zip(figs, blobs.hide, strict=False)), flag)
