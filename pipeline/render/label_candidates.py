"""Find where a sheet's "FIG. n" labels can be: short lines of letter-sized ink components, upright or turned 90°."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from designclip.pipeline.common.union_find import UnionFind
from designclip.pipeline.render.sheet_image import Box
from PIL import Image

# Letter heights at 300 dpi: USPTO rules ask for >= 3.2 mm (38 px); labels are seldom taller than ~1 cm.
MIN_CHAR_PX = 30
MAX_CHAR_PX = 190
MAX_CANDIDATES = 16
MAX_HALO = 1.5  # an underlined label ("FIG - 1" over a rule) has ~0.7
CLEAR_HALO = 0.6  # a label standing alone on white paper


@dataclass(frozen=True)
class TextCandidate:
    """A short line of letter-like components: where a label may be and the components that would be its text."""

    box: Box  # upright full-resolution pixels
    vertical: bool  # the line runs top-to-bottom (a label turned 90°)
    parts: tuple[Box, ...]  # the components of the line (full-resolution boxes)
    halo: float = 0.0  # ink around the line against ink in it: ~0 on white paper, higher when underlined or crowded


def ink_mask(gray: Image.Image, scale: int = 2) -> np.ndarray:
    """1 where a 1/scale copy of the sheet has ink."""
    small = np.asarray(gray.reduce(scale) if scale > 1 else gray)
    return (small < 170).astype(np.uint8)


def ink_components(ink: np.ndarray, scale: int = 2) -> np.ndarray:
    """Boxes [x0, y0, x1, y1] (full-resolution pixels) of the 8-connected components of a 1/scale ink mask."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if count <= 1:
        return np.zeros((0, 4), dtype=np.int64)
    x, y, w, h = (stats[1:, i].astype(np.int64) for i in range(4))
    return np.stack([x, y, x + w, y + h], axis=1) * scale


def _halo_ink(sums: np.ndarray, box: tuple[int, int, int, int], scale: int) -> float:
    """Share of ink in a ring around `box` against the ink inside it: ~0 for a label standing on white paper."""
    def total(x0: int, y0: int, x1: int, y1: int) -> int:
        h, w = sums.shape[0] - 1, sums.shape[1] - 1
        x0, x1 = max(0, min(w, x0)), max(0, min(w, x1))
        y0, y1 = max(0, min(h, y0)), max(0, min(h, y1))
        return int(sums[y1, x1] - sums[y0, x1] - sums[y1, x0] + sums[y0, x0])

    x0, y0, x1, y1 = (v // scale for v in box)
    ring = max(2, int(0.35 * min(x1 - x0, y1 - y0)))
    inside = total(x0, y0, x1, y1)
    outside = total(x0 - ring, y0 - ring, x1 + ring, y1 + ring) - inside
    return outside / max(1, inside)


def glyphs(boxes: np.ndarray, vertical: bool) -> np.ndarray:
    """How many letters each component likely holds: 1, or more when letters touch ("FIG" drawn as one blob)."""
    if vertical:
        boxes = boxes[:, [1, 0, 3, 2]]
    h = np.maximum(1, boxes[:, 3] - boxes[:, 1])
    return np.maximum(1, np.round((boxes[:, 2] - boxes[:, 0]) / (0.7 * h))).astype(np.int64)


def _lines(boxes: np.ndarray, vertical: bool, min_letters: int) -> list[list[int]]:
    """Indices of letter-like boxes chained along reading direction (similar size, aligned, close)."""
    count = glyphs(boxes, vertical)
    if vertical:
        boxes = boxes[:, [1, 0, 3, 2]]  # read a turned line as if it were upright
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    # A component up to 3.5 letter heights wide may be touching letters ("FIG" in a tight or bold font).
    letters = np.flatnonzero((h >= MIN_CHAR_PX) & (h <= MAX_CHAR_PX) & (w <= 3.5 * h) & (w >= 2))
    if len(letters) < 2:
        return []
    order = letters[np.argsort(boxes[letters, 0], kind="stable")]
    starts = boxes[order, 0]
    sets = UnionFind(len(boxes))
    for pos, i in enumerate(order):
        # Partners start within reach: a gap up to 1.8 letter heights ("FIG.  1": the dot leaves a wide gap), and a
        # partner at most 1.7 times taller, so nothing beyond x1 + 1.8 * 1.7 * h can join.
        end = int(np.searchsorted(starts, boxes[i, 2] + 3.06 * h[i], side="right"))
        js = order[pos + 1:end]
        if len(js) == 0:
            continue
        hi, hj = h[i], h[js]
        gap = boxes[js, 0] - boxes[i, 2]
        overlap = np.minimum(boxes[i, 3], boxes[js, 3]) - np.maximum(boxes[i, 1], boxes[js, 1])
        ok = (gap <= 1.8 * np.maximum(hi, hj)) & (np.maximum(hi, hj) <= 1.7 * np.minimum(hi, hj)) \
            & (overlap >= 0.6 * np.minimum(hi, hj))
        for j in js[ok]:
            sets.union(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for i in letters:
        groups.setdefault(sets.find(int(i)), []).append(int(i))
    return [g for g in groups.values() if len(g) >= 2 and int(count[g].sum()) >= min_letters]


def _with_small_marks(members: list[int], boxes: np.ndarray, small_marks: np.ndarray) -> list[int]:
    """Add the dots and hyphens inside a line's band ("FIG. 1.1", "FIG-2") to its members."""
    x0, y0 = boxes[members, 0].min(), boxes[members, 1].min()
    x1, y1 = boxes[members, 2].max(), boxes[members, 3].max()
    inside = small_marks[(boxes[small_marks, 0] >= x0) & (boxes[small_marks, 2] <= x1)
                         & (boxes[small_marks, 1] >= y0) & (boxes[small_marks, 3] <= y1)]
    return members + [int(i) for i in inside]


def find_text_candidates(gray: Image.Image, scale: int = 2, min_letters: int = 3) -> list[TextCandidate]:
    """Label-sized text lines of an upright sheet, most label-like first (at most MAX_CANDIDATES).

    A label has at least three letter-sized glyphs ("FIG" + number; "Fig" when the number is lost); bare Hague
    numbers ("1.1") have two, so the caller lowers `min_letters` for Hague patents.
    """
    ink = ink_mask(gray, scale)
    boxes = ink_components(ink, scale)
    if len(boxes) == 0:
        return []
    sums = cv2.integral(ink)
    sizes = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    small_marks = np.flatnonzero(sizes < MIN_CHAR_PX)
    found: list[tuple[float, TextCandidate]] = []
    for vertical in (False, True):
        for members in _lines(boxes, vertical, min_letters):
            line = boxes[members]
            box = (int(line[:, 0].min()), int(line[:, 1].min()), int(line[:, 2].max()), int(line[:, 3].max()))
            length, thickness = (box[3] - box[1], box[2] - box[0]) if vertical else (box[2] - box[0], box[3] - box[1])
            letters = int(glyphs(boxes[members], vertical).sum())
            if not 1.2 <= length / max(1, thickness) <= 14 or letters > 12:
                continue
            parts = boxes[_with_small_marks(members, boxes, small_marks)]
            full = (int(parts[:, 0].min()), int(parts[:, 1].min()), int(parts[:, 2].max()), int(parts[:, 3].max()))
            halo = _halo_ink(sums, full, scale)
            if halo > MAX_HALO:
                continue  # hatching, stippling, text inside a drawing: not a label on white paper
            # Labels are short words of 3-8 glyphs on white paper: rank lines by how close they come to that.
            score = 4 * halo + 0.3 * abs(letters - 5) + (0.3 if vertical else 0.0)
            found.append((score, TextCandidate(full, vertical, tuple(tuple(int(v) for v in p) for p in parts), halo)))
    found.sort(key=lambda item: (item[0], item[1].box[1], item[1].box[0]))
    return [c for _, c in found[:MAX_CANDIDATES]]
