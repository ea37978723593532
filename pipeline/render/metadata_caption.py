"""The metadata caption: the baseline text of each view until model captions exist."""

from __future__ import annotations

import re

CAPTION_VERSION = "metadata-1"


def _article(title: str) -> str:
    """'Shaving blade cartridge' -> 'a shaving blade cartridge' (keeps acronyms like 'LED')."""
    title = re.sub(r"\s+", " ", title or "").strip().rstrip(".")
    if not title:
        return "a design"
    first, _, rest = title.partition(" ")
    if not (first.isupper() and len(first) > 1):
        first = first.lower()
    text = f"{first} {rest}".strip()
    if text.startswith(("a ", "an ", "the ")):
        return text
    return ("an " if text[0] in "aeiou" else "a ") + text


def metadata_caption(title: str | None, view: str | None, class_title: str | None) -> str:
    """'Front perspective view of a shaving blade cartridge; US design class D28: Cosmetic products ...'."""
    subject = _article(title or "")
    head = f"{view[0].upper()}{view[1:]} view of {subject}" if view else f"Drawing of {subject}"
    return f"{head}, a US design patent drawing" + (f" in class {class_title}." if class_title else ".")
