"""Find the "FIG. n" labels on a sheet with an OCR model that ships inside its wheel (rapidocr-onnxruntime)."""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from pipeline.sheet_image import Box

# "FIG. 12", "Fig.3", "FIGURE 4", "FIG 1.1", "FIG. 5A" (OCR drops or doubles the dot, reads 1 as I or l).
_LABEL = re.compile(r"^\s*F[I1l|]G(?:URE)?S?\s*[.,:;·]?\s*([0-9IlOo|]{1,3}(?:[.\-][0-9IlOo|]{1,2})?)\s*([A-Za-z]?)\s*$",
                    re.IGNORECASE)
_DIGIT_FIX = str.maketrans({"I": "1", "l": "1", "|": "1", "O": "0", "o": "0"})
_LOCK = threading.Lock()


@dataclass(frozen=True)
class FigLabel:
    """One label read on a sheet: the FIG. id it names and where it is (upright full-resolution pixels)."""

    fig: str
    box: Box
    text: str
    score: float


def parse_label(text: str) -> str | None:
    """'FIG. 12' -> '12', 'Fig.1.1' -> '1.1', 'FIG. 5A' -> '5A'; anything else -> None."""
    m = _LABEL.match(text.replace(" .", "."))
    if not m:
        return None
    number = m.group(1).translate(_DIGIT_FIX).replace("-", ".")
    if not number[0].isdigit():
        return None
    return number + m.group(2).upper()


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    """One OCR engine per process (model load ~0.3 s); imported only when a sheet needs reading."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # pragma: no cover - it is a required dependency
        raise RuntimeError("rapidocr-onnxruntime is missing: pip install rapidocr-onnxruntime") from exc
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)


def find_fig_labels(gray: Image.Image, scale: int = 3) -> list[FigLabel]:
    """Every "FIG. n" label on an upright gray sheet, read at 1/scale resolution (same labels, ~10x faster)."""
    small = gray.reduce(scale) if scale > 1 else gray
    with _LOCK:  # the ONNX session is not shared across threads of one process
        result, _ = _engine()(np.asarray(small))
    labels = []
    for points, text, score in result or []:
        fig = parse_label(text)
        if fig is None:
            continue
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        box = (int(min(xs) * scale), int(min(ys) * scale), int(max(xs) * scale) + scale, int(max(ys) * scale) + scale)
        labels.append(FigLabel(fig=fig, box=box, text=text, score=float(score)))
    return labels
