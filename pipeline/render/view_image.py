"""Turn one FIG. region of a sheet into the dataset's square PNG: crop with margin, pad white, resize, encode."""

from __future__ import annotations

import io

import numpy as np
from designclip.pipeline.render.sheet_image import Box
from PIL import Image


def crop_box(box: Box, sheet_size: tuple[int, int], margin: float) -> Box:
    """`box` grown by margin x its longer side on every edge, clipped to the sheet."""
    pad = int(round(margin * max(box[2] - box[0], box[3] - box[1])))
    w, h = sheet_size
    return (max(0, box[0] - pad), max(0, box[1] - pad), min(w, box[2] + pad), min(h, box[3] + pad))


def square_view(gray: Image.Image, box: Box, size: int) -> Image.Image:
    """The region centred on a white square, resized (area-averaging, so dithering turns gray, not to noise)."""
    region = gray.crop(box)
    scale = size / max(region.size)
    # Resize the region itself, then pad: the white border is never resampled (a third less work on tall sheets).
    target = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    if target != region.size:
        region = region.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("L", (size, size), 255)
    canvas.paste(region, ((size - region.width) // 2, (size - region.height) // 2))
    return canvas


def encode_png(image: Image.Image, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def keep_ink(image: Image.Image, target: int) -> Image.Image:
    """Shrink by the whole factor with a min-pool (darkest pixel wins) so thin drawing lines survive a big downscale."""
    factor = int(min(image.size) / max(1, target))
    if factor < 2:
        return image
    pixels = np.asarray(image)
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = pixels[:h, :w].reshape(h // factor, factor, w // factor, factor, *pixels.shape[2:])
    return Image.fromarray(blocks.min(axis=(1, 3)), mode=image.mode)
