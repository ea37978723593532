"""Take the "FIG. n" text out of a sheet before its views are cut, so a model never learns the label as design."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from designclip.pipeline.render.sheet_image import Box
from PIL import Image

_PAD = 4


def erase_text(gray: Image.Image, boxes: Iterable[Box]) -> Image.Image:
    """A copy of the sheet with the ink components that lie wholly inside each box painted white.

    A component that reaches past its box's padded edge is a drawing line touching the label: it stays whole.
    """
    boxes = list(boxes)
    if not boxes:
        return gray
    pixels = np.array(gray)
    height, width = pixels.shape
    for x0, y0, x1, y1 in boxes:
        cx0, cy0 = max(0, x0 - _PAD), max(0, y0 - _PAD)
        cx1, cy1 = min(width, x1 + _PAD), min(height, y1 + _PAD)
        crop = pixels[cy0:cy1, cx0:cx1]
        if crop.size == 0:
            continue
        ink = (crop < 200).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        h, w = ink.shape
        for i in range(1, count):
            x, y, cw, ch = (int(v) for v in stats[i][:4])
            touches_edge = (x == 0 and cx0 > 0) or (y == 0 and cy0 > 0) or (x + cw == w and cx1 < width) \
                or (y + ch == h and cy1 < height)
            if not touches_edge:
                crop[labels == i] = 255
    return Image.fromarray(pixels, mode="L")


def hide_ink(gray: Image.Image, mask: np.ndarray, box: Box) -> Image.Image:
    """A copy of the sheet with the pixels under `mask` (a coarse 1/k grid of the sheet) painted white inside `box`.

    Used where two FIG.s' boxes overlap: a view shows only the ink given to its own label.
    """
    scale_y = gray.height / mask.shape[0]
    scale_x = gray.width / mask.shape[1]
    x0, y0, x1, y1 = box
    cells = mask[int(y0 / scale_y):int(np.ceil(y1 / scale_y)), int(x0 / scale_x):int(np.ceil(x1 / scale_x))]
    if not cells.any():
        return gray
    pixels = np.array(gray)
    cy0, cx0 = int(y0 / scale_y), int(x0 / scale_x)
    full = cv2.resize(cells, (round(cells.shape[1] * scale_x), round(cells.shape[0] * scale_y)),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    top, left = round(cy0 * scale_y), round(cx0 * scale_x)
    region = pixels[top:top + full.shape[0], left:left + full.shape[1]]
    region[full[:region.shape[0], :region.shape[1]]] = 255
    return Image.fromarray(pixels, mode="L")
