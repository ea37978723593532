"""A stored drawing sheet decoded to 8-bit gray: the one TIFF decode the render and the DeepPatent rebuild share."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError


class SheetImageError(ValueError):
    """The stored sheet bytes are not a readable image (recorded per sheet; the patent's other views go on)."""


def decode_gray(data: bytes) -> Image.Image:
    """CCITT G4 (mode "1") to 8-bit gray *before* any resampling, so dithered screenshots turn gray, not to noise."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SheetImageError(f"unreadable sheet image ({exc})") from exc
