"""Turn one FIG. region of a sheet into the dataset's square PNG: crop with margin, pad white, resize, encode."""

from __future__ import annotations

import io

from PIL import Image

from pipeline.sheet_image import Box


def crop_box(box: Box, sheet_size: tuple[int, int], margin: float) -> Box:
    """`box` grown by margin x its longer side on every edge, clipped to the sheet."""
    pad = int(round(margin * max(box[2] - box[0], box[3] - box[1])))
    w, h = sheet_size
    return (max(0, box[0] - pad), max(0, box[1] - pad), min(w, box[2] + pad), min(h, box[3] + pad))


def square_view(gray: Image.Image, box: Box, size: int) -> Image.Image:
    """The region centred on a white square, resized (area-averaging, so dithering turns gray, not to noise)."""
    region = gray.crop(box)
    side = max(region.size)
    canvas = Image.new("L", (side, side), 255)
    canvas.paste(region, ((side - region.width) // 2, (side - region.height) // 2))
    if side == size:
        return canvas
    return canvas.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode_png(image: Image.Image, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()
