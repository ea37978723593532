"""Multi-FIG. sheets composed from real tune drawings, for layouts the hand-checked sets hold too few of.

Drawings are the ink of one-FIG. sheets of tune fixture patents (labels erased), shrunk like a scan would keep
them (min-pool, binarised); labels are set in DejaVu Sans (shipped with matplotlib) above, below or beside
(turned) each drawing, with gaps from 14 to 120 px, in stacks, rows and 2x2 grids, optionally staggered.
Compositions where two drawings' boxes (or a label and a drawing) touch are skipped: nothing could cut them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from designclip.pipeline.render.label_erase import erase_text
from designclip.pipeline.render.segment import analyse_sheet
from designclip.pipeline.render.segment_eval import coverage
from designclip.pipeline.render.sheet_image import Box, decode_sheet, ink_box
from PIL import Image, ImageDraw, ImageFont

from tests.pipeline.render.test_patent_views import fixture_input

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
TUNE_ONE_FIG_PATENTS = ("USD0907292", "USD0918440", "USD0919622", "USD0928323", "USD0929296", "USD0938702",
                        "USD0913943", "USD0917866")  # tune part of tests/data/segmentation_truth.json
W, H = 2550, 3300


@dataclass
class SyntheticSheet:
    gray: Image.Image
    truth: list[tuple[str, Box]]  # FIG. number and the drawing's box
    settings: dict


def drawing_pool() -> list[Image.Image]:
    """The label-free ink of every drawing sheet of the tune one-FIG. patents."""
    pool = []
    for pid in TUNE_ONE_FIG_PATENTS:
        item = fixture_input(pid)
        orientation = {s["sheet"]: s["orientation"] for s in item.sheets}
        for number, data in sorted(item.images.items()):
            if number == 0:
                continue
            gray = decode_sheet(data, orientation[number])
            gray = erase_text(gray, analyse_sheet(gray, number).erase_boxes())
            box = ink_box(gray)
            if box:
                pool.append(gray.crop(box))
    return pool


def _label(text: str, size: int, turned: bool) -> Image.Image:
    font = ImageFont.truetype(str(FONT), size)
    width, height = font.getbbox(text)[2:]
    image = Image.new("L", (width + 4, height + 4), 255)
    ImageDraw.Draw(image).text((2, 0), text, font=font, fill=0)
    return image.rotate(90, expand=True, fillcolor=255) if turned else image


def _shrink(drawing: Image.Image, scale: float) -> Image.Image:
    if scale >= 1:
        return drawing
    factor = math.ceil(1 / scale)
    a = np.asarray(drawing)
    h, w = a.shape[0] // factor * factor, a.shape[1] // factor * factor
    a = a[:h, :w].reshape(h // factor, factor, w // factor, factor).min(axis=(1, 3))
    return Image.fromarray(np.where(a < 160, 0, 255).astype(np.uint8))


def compose(rng: random.Random, pool: list[Image.Image], staggered: bool) -> SyntheticSheet | None:
    """One sheet of 2-4 FIG.s; None when its drawings or labels would touch."""
    n = rng.choice([2, 2, 3, 4])
    layout = rng.choice(["stack", "row", "grid"]) if n == 4 else rng.choice(["stack", "row"])
    place = rng.choice(["below", "above", "left", "right"])
    gap, size = rng.choice([14, 25, 50, 120]), rng.choice([40, 55, 70])
    style = rng.choice(["FIG. {}", "Fig. {}", "FIGURE {}", "FIG.{}"])
    cols = 1 if layout == "stack" else (n if layout == "row" else 2)
    rows = -(-n // cols)
    cell_w, cell_h = (W - 200) // cols, (H - 200) // rows
    sheet = Image.new("L", (W, H), 255)
    truth, taken = [], []
    for i in range(n):
        label = _label(style.format(i + 1), size, place in ("left", "right"))
        side = place in ("left", "right")
        drawing = rng.choice(pool)
        room_w = cell_w - gap - (label.width if side else 0) - 40
        room_h = cell_h - gap - (0 if side else label.height) - 40
        drawing = _shrink(drawing, min(room_w / drawing.width, room_h / drawing.height, 1.0))
        cx, cy = 100 + (i % cols) * cell_w, 100 + (i // cols) * cell_h
        if staggered:
            cx = max(0, cx + rng.randint(-cell_w // 5, cell_w // 5) if cols > 1 else cx + rng.randint(-300, 300))
            cy = max(0, cy + rng.randint(-cell_h // 5, cell_h // 5) if rows > 1 else cy + rng.randint(-300, 300))
        if place == "below":
            dx, dy = cx + (cell_w - drawing.width) // 2, cy + 20
            lx, ly = cx + (cell_w - label.width) // 2, dy + drawing.height + gap // 2
        elif place == "above":
            lx, ly = cx + (cell_w - label.width) // 2, cy + 20
            dx, dy = cx + (cell_w - drawing.width) // 2, ly + label.height + gap // 2
        elif place == "left":
            lx, ly = cx + 20, cy + (cell_h - label.height) // 2
            dx, dy = lx + label.width + gap // 2, cy + (cell_h - drawing.height) // 2
        else:
            dx, dy = cx + 20, cy + (cell_h - drawing.height) // 2
            lx, ly = dx + drawing.width + gap // 2, cy + (cell_h - label.height) // 2
        dx, dy = max(0, min(dx, W - drawing.width)), max(0, min(dy, H - drawing.height))
        lx, ly = max(0, min(lx, W - label.width)), max(0, min(ly, H - label.height))
        boxes = [(dx, dy, dx + drawing.width, dy + drawing.height), (lx, ly, lx + label.width, ly + label.height)]
        if any(coverage(a, b) > 0 for a in boxes for b in taken):
            return None
        taken += boxes
        sheet.paste(drawing, (dx, dy))
        sheet.paste(label, (lx, ly))
        truth.append((str(i + 1), boxes[0]))
    return SyntheticSheet(sheet, truth, {"n": n, "layout": layout, "place": place, "gap": gap, "size": size,
                                          "style": style, "staggered": staggered})

