"""A stored TIFF sheet as DeepPatent ships it: an 8-bit grey PNG at the sheet's own resolution, named as listed."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import PurePosixPath

from designclip.storage import layout
from PIL import Image, UnidentifiedImageError


class SheetDecodeError(ValueError):
    """A stored sheet that does not decode: reported as missing with this reason, never written half."""


def sheet_stem(file: str) -> str:
    """`USD0834581-20181127-D00002.TIF` -> `USD0834581-20181127-D00002`: what a list line's file name is made of."""
    return PurePosixPath(file).stem


def listed_path(week: dt.date, patent_id: str, file: str) -> str:
    """The path DeepPatent's lists give a sheet: `I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png`."""
    return f"{layout.week_id(week)}/{patent_id}-{week:%Y%m%d}/{sheet_stem(file)}.png"


def tiff_to_png(data: bytes) -> bytes:
    """The TIFF (bilevel as the USPTO ships it) as an 8-bit grey PNG, same size, no rotation or crop."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            grey = im.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SheetDecodeError(f"unreadable sheet image ({exc})") from exc
    out = io.BytesIO()
    grey.save(out, format="PNG", optimize=False)
    return out.getvalue()
