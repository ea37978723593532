"""Normalise free-text view names ("a front elevational view") to a small vocabulary people can filter on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DIRECTIONS = ("front", "rear", "left", "right", "top", "bottom", "side")
VIEW_TYPES = ("perspective", "elevation", "plan", "section", "detail", "exploded", "enlarged", "in-use")

_DIRECTION_WORDS = {
    "front": "front",
    "rear": "rear",
    "back": "rear",
    "left": "left",
    "right": "right",
    "top": "top",
    "bottom": "bottom",
    "underside": "bottom",
    "side": "side",
}
_TYPE_PATTERNS = [
    ("exploded", re.compile(r"\bexploded\b")),
    ("section", re.compile(r"\b(?:cross[- ]?)?section(?:al)?\b")),
    ("detail", re.compile(r"\bdetail(?:ed)?\b|\bpartial\b")),
    ("enlarged", re.compile(r"\b(?:enlarged|magnified|close[- ]up)\b")),
    ("in-use", re.compile(r"\bin[- ]use\b|\benvironment(?:al)?\b|\buse state\b")),
    ("perspective", re.compile(r"\b(?:perspective|isometric|axonometric)\b")),
    ("elevation", re.compile(r"\belevation(?:al)?\b")),
    ("plan", re.compile(r"\bplan\b")),
]
_WORD = re.compile(r"[a-z]+")
# The view phrase ends where the object begins ("... view of a shoe", "... view thereof").
_HEAD_END = re.compile(r"\b(?:of|thereof|showing|illustrating|according|for|taken|in which|with|wherein)\b|[;:.(]")
_IN_USE = re.compile(r"\bin[- ]use\b|\benvironment(?:al)?\b|\buse state\b")


@dataclass(frozen=True)
class View:
    """A normalised view: `view` is the label, direction and type its two parts (either may be empty)."""

    view: str
    direction: str
    type: str


UNKNOWN = View("unknown", "", "")


def view_head(description: str) -> str:
    """The part of a FIG. description that names the view, e.g. 'a front perspective view'."""
    text = description.lower()
    text = re.sub(r"^\s*(?:is|are)\s+", "", text)
    m = _HEAD_END.search(text)
    return text[: m.start()] if m else text[:120]


def normalise_view(description: str) -> View:
    """Direction (first one named) + type; orthographic elevation/plan views with a direction are that direction."""
    view = _normalise_head(view_head(description))
    if not view.type and _IN_USE.search(description.lower()):
        return View(" ".join(p for p in (view.direction, "in-use") if p), view.direction, "in-use")
    return view


@lru_cache(maxsize=4096)
def _normalise_head(head: str) -> View:
    """Cached: a week repeats the same few hundred view phrases ("a top plan view") thousands of times."""
    words = _WORD.findall(head.replace("-", " "))
    named = [_DIRECTION_WORDS[w] for w in words if w in _DIRECTION_WORDS]
    # "left side view" names left, "opposite side front view" front; a bare "side" stays side.
    direction = next((d for d in named if d != "side"), "side" if named else "")
    kind = next((name for name, pat in _TYPE_PATTERNS if pat.search(head)), "")
    if kind in ("elevation", "plan") and direction:
        return View(direction, direction, kind)
    if not kind and not direction:
        return UNKNOWN
    label = " ".join(p for p in (direction, kind) if p)
    return View(label, direction, kind)
