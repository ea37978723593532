"""A stored TIFF sheet as DeepPatent ships it: an 8-bit grey PNG at the sheet's own resolution, named as listed."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import PurePosixPath

from designclip.pipeline.common.gray_sheet import decode_gray
from designclip.storage import layout


def sheet_stem(file: str) -> str:
    """`USD0834581-20181127-D00002.TIF` -> `USD0834581-20181127-D00002`: what a list line's file name is made of."""
    return PurePosixPath(file).stem


def listed_path(week: dt.date, patent_id: str, file: str) -> str:
    """The path DeepPatent's lists give a sheet: `I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png`."""
    return f"{layout.week_id(week)}/{patent_id}-{week:%Y%m%d}/{sheet_stem(file)}.png"


def tiff_to_png(data: bytes) -> bytes:
    """The TIFF (bilevel as the USPTO ships it) as an 8-bit grey PNG, same size, no rotation or crop."""
    out = io.BytesIO()
    decode_gray(data).save(out, format="PNG", optimize=False)  # SheetImageError: reported missing, never written
    return out.getvalue()
