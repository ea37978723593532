"""A stored TIFF sheet becomes an 8-bit grey PNG of the same pixels, named as DeepPatent lists it."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from designclip.pipeline.common.gray_sheet import SheetImageError
from designclip.pipeline.deeppatent.sheets import listed_path, tiff_to_png
from PIL import Image

from tests.conftest import patent_folder


def test_png_holds_the_tiff_pixels_at_its_size() -> None:
    tiff = (patent_folder("USD0909824") / "USD0909824-20210209-D00001.TIF").read_bytes()
    png = Image.open(io.BytesIO(tiff_to_png(tiff)))
    source = Image.open(io.BytesIO(tiff))
    assert png.format == "PNG" and png.mode == "L" and png.size == source.size and source.mode == "1"
    assert np.array_equal(np.asarray(png), np.asarray(source.convert("L")))
    assert set(np.unique(np.asarray(png))) <= {0, 255}


def test_unreadable_sheet_is_an_error() -> None:
    with pytest.raises(SheetImageError, match="unreadable"):
        tiff_to_png(b"II*\0 not a tiff")


def test_listed_path() -> None:
    assert listed_path(dt.date(2018, 11, 27), "USD0834581", "USD0834581-20181127-D00002.TIF") == \
        "I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png"
