"""Design classifications: parse the XML's fixed-width codes and load the shipped class-title tables."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

US_DESIGN_CLASSES: tuple[str, ...] = tuple(f"D{i}" for i in range(1, 31)) + ("D32", "D34", "D99")
_TWO_DIGIT = {c[1:] for c in US_DESIGN_CLASSES if len(c) == 3}


@dataclass(frozen=True)
class Uspc:
    """A USPC design classification: class ('D7') and subclass ('654'), printed 'D7/654'."""

    us_class: str
    subclass: str

    def __str__(self) -> str:
        return f"{self.us_class}/{self.subclass}" if self.subclass else self.us_class


def parse_uspc(code: str) -> Uspc | None:
    """Fixed width 'D 7654' -> D7/654, 'D28 47' -> D28/47, 'D14486' -> D14/486, 'D101194' -> D10/119.4."""
    s = code.strip()
    if not s.startswith("D") or len(s) < 2:
        return None
    if s[1] != " " and s[1:3] not in _TWO_DIGIT:
        s = f"D {s[1:]}"  # some further classifications drop the pad of a one-digit class
    us_class = "D" + s[1:3].strip()
    if not us_class[1:].isdigit():
        return None
    rest = s[3:]
    sub, ext = rest[:3].strip(), rest[3:].strip()
    if ext:
        sub = f"{sub}.{ext}" if ext.isdigit() else f"{sub}{ext}"
    return Uspc(us_class, sub)


def parse_locarno(code: str) -> tuple[str, str] | None:
    """'0703' -> ('07-03', '07'); two-digit codes give the class alone."""
    digits = re.sub(r"\D", "", code or "")
    if len(digits) == 4:
        return f"{digits[:2]}-{digits[2:]}", digits[:2]
    if len(digits) == 2:
        return digits, digits
    return None


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("designclip.reference").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def us_design_class_titles() -> dict[str, str]:
    """The 33 US design classes in their published order (the index is the class id used downstream)."""
    return {row["class"]: row["title"] for row in _read_csv("us_design_classes.csv")}


@cache
def locarno_class_titles() -> dict[str, str]:
    """The 32 Locarno classes (titles of editions 12-14)."""
    return {row["class"]: row["title"] for row in _read_csv("locarno_classes.csv")}
