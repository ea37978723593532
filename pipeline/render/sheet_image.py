"""Decode a stored drawing sheet into an upright grayscale image: the one place that knows TIFF quirks."""

from __future__ import annotations

import cv2
import numpy as np
from designclip.pipeline.common.gray_sheet import decode_gray
from PIL import Image

Box = tuple[int, int, int, int]


def decode_sheet(data: bytes, orientation: str | None) -> Image.Image:
    """CCITT G4 (mode "1") to 8-bit gray *before* any resampling, turned upright when stored landscape."""
    gray = decode_gray(data)
    if orientation == "landscape":
        # USPTO stores landscape sheets rotated 90 degrees counter-clockwise; turn them back clockwise (OpenCV: the
        # same pixels as Image.Transpose.ROTATE_270, ~10x faster on a whole sheet).
        gray = Image.fromarray(cv2.rotate(np.asarray(gray), cv2.ROTATE_90_CLOCKWISE))
    return gray


def ink_box(gray: Image.Image, threshold: int = 250, scale: int = 4) -> Box | None:
    """Box of any ink (None for a blank sheet): on a 1/scale copy, where a 1-px line still darkens its cell."""
    small = gray.reduce(scale) if scale > 1 else gray
    box = small.point(lambda v: 255 if v < threshold else 0).getbbox()
    if box is None:
        return None
    w, h = gray.size
    return (max(0, (box[0] - 1) * scale), max(0, (box[1] - 1) * scale), min(w, (box[2] + 1) * scale),
            min(h, (box[3] + 1) * scale))


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


