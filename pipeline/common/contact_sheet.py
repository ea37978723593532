"""Contact sheets: a grid of view thumbnails with their keys, so people can look at what a stage produced."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps


@dataclass(frozen=True)
class Thumb:
    label: str
    image: Image.Image
    flagged: bool = False
    frame: str = ""  # a frame colour of its own (e.g. green for a right hit); flagged alone means red


def thumbnail(png: bytes, label: str, flagged: bool = False, cell: int = 160, frame: str = "") -> Thumb:
    """A small copy (kept instead of the PNG so a week's preview costs ~25 KiB per view at most)."""
    with Image.open(io.BytesIO(png)) as im:
        small = ImageOps.contain(im.convert("L"), (cell, cell))
    return Thumb(label, small, flagged, frame)


def contact_sheet(thumbs: list[Thumb], columns: int = 8, cell: int = 160, title: str = "") -> bytes:
    """PNG grid; flagged views (whole-sheet fallbacks) get a red frame, others the frame colour they carry."""
    columns = max(1, min(columns, len(thumbs)))
    rows = max(1, (len(thumbs) + columns - 1) // columns)
    top = 22 if title else 0
    sheet = Image.new("RGB", (columns * cell, top + rows * (cell + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 4), title, fill="black")
    for i, t in enumerate(thumbs):
        x, y = (i % columns) * cell, top + (i // columns) * (cell + 16)
        sheet.paste(t.image.convert("RGB"), (x + (cell - t.image.width) // 2, y + (cell - t.image.height) // 2))
        if t.flagged or t.frame:
            draw.rectangle((x + 1, y + 1, x + cell - 2, y + cell - 2), outline=t.frame or "red", width=3)
        draw.text((x + 4, y + cell + 2), t.label[:26], fill="red" if t.flagged else "black")
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def caption_sheet(items: list[tuple[bytes, str, str]], columns: int = 4, cell: int = 200, title: str = "") -> bytes:
    """PNG grid of views with their key and wrapped caption underneath (failed captions in red)."""
    import textwrap

    columns = max(1, min(columns, len(items)))
    rows = max(1, (len(items) + columns - 1) // columns)
    text_h, top = 96, 22 if title else 0
    sheet = Image.new("RGB", (columns * cell, top + rows * (cell + text_h)), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 4), title, fill="black")
    for i, (png, key, caption) in enumerate(items):
        x, y = (i % columns) * cell, top + (i // columns) * (cell + text_h)
        try:
            small = thumbnail(png, key, cell=cell - 8).image
        except (OSError, ValueError, Image.DecompressionBombError):  # the view itself is what failed
            small = Image.new("L", (cell - 8, cell - 8), 230)
        sheet.paste(small.convert("RGB"), (x + (cell - small.width) // 2, y + (cell - small.height) // 2))
        failed = caption.startswith("FAILED")
        lines = [key, *textwrap.wrap(caption, width=cell // 6)][:8]
        for j, line in enumerate(lines):
            draw.text((x + 4, y + cell + 2 + 11 * j), line, fill="red" if failed else ("gray" if j == 0 else "black"))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
