"""Cut a sheet's ink into exactly one region per FIG. label: recursive whitespace cuts (XY-cut) guided by the labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from designclip.pipeline.render.sheet_image import Box

MIN_GAP_PX = 12  # full-resolution whitespace a cut needs (~1 mm at 300 dpi; the widest gap is tried first)


def _empty_runs(profile: np.ndarray, min_run: int) -> list[tuple[int, int]]:
    """Interior runs of zeros at least min_run long, as (start, end) indices (end exclusive)."""
    runs, start = [], None
    for i, v in enumerate(profile):
        if v == 0 and start is None:
            start = i
        elif v != 0 and start is not None:
            if start > 0 and i - start >= min_run:
                runs.append((start, i))
            start = None
    return runs


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


def _centre(box: Box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _ink_box(mask: np.ndarray, cell: Box) -> Box | None:
    """Bounding box (mask pixels) of the ink inside `cell`."""
    x0, y0, x1, y1 = cell
    part = mask[y0:y1, x0:x1]
    rows = np.flatnonzero(part.any(axis=1))
    cols = np.flatnonzero(part.any(axis=0))
    if len(rows) == 0:
        return None
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def xy_cut(ink: np.ndarray, labels: Sequence[Box], scale: int, min_share: float = 0.01,
           fine: np.ndarray | None = None) -> list[Box] | None:
    """One ink box per label (full-resolution pixels, same order), or None when no whitespace cuts separate them.

    `ink` is the sheet's ink at 1/scale with the label text removed; `labels` are label boxes (full resolution).
    A cut is allowed only where each side keeps at least one label and real ink, so a label is never cut away
    from the drawing it names, whether it sits under, over or beside it. `fine` (same grid, fainter ink such as
    single dots of a dotted line) only widens each region's box inside its own cell.
    """
    small_labels = [tuple(v // scale for v in box) for box in labels]
    solid = ink.copy()
    for x0, y0, x1, y1 in small_labels:
        solid[y0:y1 + 1, x0:x1 + 1] = 1
    total = int(ink.sum())
    if total == 0:
        return None
    min_run = max(2, MIN_GAP_PX // scale)
    result: dict[int, Box] = {}

    def cut(cell: Box, members: list[int]) -> bool:
        if len(members) == 1:
            box = _ink_box(ink if fine is None else np.maximum(ink, fine), cell)
            if box is None:
                return False
            result[members[0]] = box
            return True
        x0, y0, x1, y1 = cell
        best: tuple[int, Box, Box, list[int], list[int]] | None = None
        for axis in (0, 1):  # 0: cut between rows (horizontal line), 1: between columns
            profile = solid[y0:y1, x0:x1].any(axis=1 - axis)
            for start, end in _empty_runs(profile, min_run):
                mid = (start + end) // 2
                if axis == 0:
                    a, b = (x0, y0, x1, y0 + mid), (x0, y0 + mid, x1, y1)
                else:
                    a, b = (x0, y0, x0 + mid, y1), (x0 + mid, y0, x1, y1)
                side_a = [i for i in members if _inside(_centre(small_labels[i]), a)]
                side_b = [i for i in members if i not in side_a]
                if not side_a or not side_b:
                    continue
                ink_a = int(ink[a[1]:a[3], a[0]:a[2]].sum())
                ink_b = int(ink[b[1]:b[3], b[0]:b[2]].sum())
                if min(ink_a, ink_b) < min_share * total:
                    continue  # a side with a label but (almost) no drawing: the label belongs across the gap
                width = end - start
                if best is None or width > best[0]:
                    best = (width, a, b, side_a, side_b)
        if best is None:
            return False
        _, a, b, side_a, side_b = best
        return cut(a, side_a) and cut(b, side_b)

    height, width = ink.shape
    if not cut((0, 0, width, height), list(range(len(labels)))):
        return None
    return [(result[i][0] * scale, result[i][1] * scale, result[i][2] * scale, result[i][3] * scale)
            for i in range(len(labels))]
