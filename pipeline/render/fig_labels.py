"""Read a sheet's "FIG. n" labels: recognise only label-sized text lines, at full resolution, with an OCR model that
ships inside its wheel (rapidocr-onnxruntime); no text detector runs over the whole sheet."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from designclip.pipeline.render.label_candidates import CLEAR_HALO, TextCandidate, find_text_candidates
from designclip.pipeline.render.sheet_image import Box
from PIL import Image

# "FIG. 12", "Fig.3", "FIGURE 4", "Figure 8", "FIG 1.1", "FIG. 5A", "FIG-2" (OCR drops or doubles the dot, reads
# 1 as I or l, G as 6 or C; "IG. 3" when the F touches a drawing line and is not part of the text line).
_LABEL = re.compile(r"^\s*(?:[FE][I1l|!i]?[G6C]|[Il|!i]G)\s*(?:URE|ure|ur[ec])?\s*S?\s*[.,:;·\-_]*\s*"
                    r"([0-9IlOo|]{1,3}(?:\s?[.\-·,]\s?[0-9IlOo|]{1,2})?)\s*([A-Za-z]?)\s*[.,]?\s*$", re.IGNORECASE)
_HAGUE = re.compile(r"^\s*([0-9]{1,2})\s*[.,·]\s*([0-9]{1,2})\s*$")  # a bare Hague reproduction number "1.1"
_FIG_WORD = re.compile(r"^\s*[FE][I1l|!i]?[G6C]", re.IGNORECASE)
_DIGIT_FIX = str.maketrans({"I": "1", "l": "1", "|": "1", "O": "0", "o": "0", "i": "1", "!": "1"})
_LOCK = threading.Lock()
_BATCH = 6  # the recogniser's own batch size


@dataclass(frozen=True)
class FigLabel:
    """One label read on a sheet: the FIG. id it names, where it is, and the components that draw its text."""

    fig: str
    box: Box
    text: str
    score: float
    rotation: int = 0  # 0: upright; 90: the label runs top-to-bottom
    parts: tuple[Box, ...] = ()


def parse_label(text: str, hague: bool = False) -> str | None:
    """'FIG. 12' -> '12', 'Fig.1.1' -> '1.1', 'FIG. 5A' -> '5A', bare '1.1' when `hague`; anything else -> None."""
    text = text.replace(" .", ".").strip()
    m = _LABEL.match(text)
    if m:
        number = re.sub(r"\s", "", m.group(1)).translate(_DIGIT_FIX).replace("-", ".").replace(",", ".")
        number = number.replace("·", ".")
        if not number[0].isdigit() or not number.replace(".", "").isdigit():
            return None
        return number + m.group(2).upper()
    if hague:
        h = _HAGUE.match(text)
        if h:
            return f"{int(h.group(1))}.{int(h.group(2))}"
    return None


def looks_like_label(text: str) -> bool:
    """Text that starts like "FIG" but whose number was not read: a label is there, we just do not know which."""
    return bool(_FIG_WORD.match(text)) and parse_label(text) is None and len(text.strip()) <= 12


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    """One OCR engine per process (model load ~0.3 s); imported only when a sheet needs reading."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # pragma: no cover - it is a required dependency
        raise RuntimeError("rapidocr-onnxruntime is missing: pip install rapidocr-onnxruntime") from exc
    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    # Label lines are short: pad each batch only to its own widest line, not to the default 320 px (~20 % faster).
    engine.text_rec.rec_image_shape = [3, 48, 48]
    return engine


def warm_recogniser() -> None:
    """Load the OCR model now (a render worker's initializer), so no sheet waits for it."""
    _engine()


def _crop(gray: Image.Image, cand: TextCandidate) -> list[tuple[int, np.ndarray]]:
    """The candidate's line at full resolution, padded, as RGB arrays in the reading directions to try."""
    x0, y0, x1, y1 = cand.box
    pad = max(6, int(0.3 * (min(x1 - x0, y1 - y0))))
    box = (max(0, x0 - pad), max(0, y0 - pad), min(gray.width, x1 + pad), min(gray.height, y1 + pad))
    crop = gray.crop(box)
    if not cand.vertical:
        return [(0, np.asarray(crop.convert("RGB")))]
    # A turned label is usually written bottom-to-top; try that first, then top-to-bottom.
    return [(90, np.asarray(crop.transpose(turn).convert("RGB")))
            for turn in (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90)]


def recognise(images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
    """Text and confidence of each line image (one batched call of the recogniser)."""
    if not images:
        return []
    with _LOCK:  # the ONNX session is not shared across threads of one process
        result, _ = _engine().text_rec(list(images))
    return [(str(text), float(score)) for text, score in result]


@dataclass(frozen=True)
class SheetText:
    """What label reading found on a sheet: the labels, and candidates that look like an unread label."""

    labels: list[FigLabel]
    unread: list[Box]


def _read(gray: Image.Image, candidates: Sequence[TextCandidate]) -> list[tuple[TextCandidate, int, str, float]]:
    """Recognise candidate lines (both reading directions for a turned one): (candidate, rotation, text, score)."""
    jobs = [(cand, rotation, image) for cand in candidates for rotation, image in _crop(gray, cand)]
    texts = recognise([image for _, _, image in jobs])
    return [(cand, rotation, text, score) for (cand, rotation, _), (text, score) in zip(jobs, texts, strict=True)]


def _batches(count: int, first: int) -> list[tuple[int, int]]:
    """(start, end) slices: `first` candidates, then the recogniser's batch size at a time."""
    edges = [0, min(count, first)]
    while edges[-1] < count:
        edges.append(min(count, edges[-1] + _BATCH))
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def read_sheet_labels(gray: Image.Image, hague: bool = False, expect: int | None = None) -> SheetText:
    """Every "FIG. n" label of an upright gray sheet, recognised on label-sized text lines only.

    Lines standing alone on white paper are read first; crowded or underlined ones after them, except when the
    sheet's `expect`ed labels are already found, so a typical sheet costs a handful of small recognitions, not a
    page of OCR.
    """
    candidates = find_text_candidates(gray, min_letters=2 if hague else 3)
    clear = [c for c in candidates if c.halo <= CLEAR_HALO]
    crowded = [c for c in candidates if c.halo > CLEAR_HALO]
    results: list[tuple[TextCandidate, int, str, float]] = []

    def expected_found() -> bool:
        return expect is not None and len(_labels(results, hague)) >= expect

    for number, tier in enumerate((clear, crowded)):
        found = _labels(results, hague).values()
        if number == 1 and expect is None and found:
            # A sheet of unknown count reads its crowded lines too (one label may stand close to a drawing), but
            # labels on one sheet share a font size: only those as tall as a label already found.
            tier = [c for c in tier if any(_same_size(c, lb) for lb in found)]
        # When the count is known, read the likeliest line alone first: on a one-FIG. sheet it is the label.
        for start, end in _batches(len(tier), expect if expect is not None else _BATCH):
            results += _read(gray, tier[start:end])
            if expected_found():
                break
        if expected_found():
            break
    labels = _labels(results, hague)
    unread: list[Box] = []
    for cand, _, text, score in results:
        if looks_like_label(text) and score >= 0.5 and cand.box not in unread and cand.box not in labels:
            unread.append(cand.box)
    found = sorted(labels.values(), key=lambda lb: (lb.box[1], lb.box[0]))
    return SheetText(found, unread)


def _same_size(candidate: TextCandidate, label: FigLabel) -> bool:
    """Whether a text line is as thick as a label read on the same sheet (within a quarter)."""
    def thickness(box: Box, vertical: bool) -> int:
        return box[2] - box[0] if vertical else box[3] - box[1]

    mine, theirs = thickness(candidate.box, candidate.vertical), thickness(label.box, label.rotation == 90)
    return abs(mine - theirs) <= 0.25 * theirs


def _labels(results: Sequence[tuple[TextCandidate, int, str, float]], hague: bool) -> dict[Box, FigLabel]:
    """The best-scoring parse of each candidate line that reads as a FIG. label."""
    labels: dict[Box, FigLabel] = {}
    for cand, rotation, text, score in results:
        fig = parse_label(text, hague=hague)
        if fig is None or score < 0.5:
            continue
        best = labels.get(cand.box)
        if best is None or score > best.score:
            labels[cand.box] = FigLabel(fig, cand.box, text, score, rotation, cand.parts)
    return labels


def find_fig_labels(gray: Image.Image, hague: bool = False) -> list[FigLabel]:
    """Every "FIG. n" label on an upright gray sheet (see read_sheet_labels)."""
    return read_sheet_labels(gray, hague=hague).labels
