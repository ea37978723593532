"""Normalise free-text view names ("a front elevational view") to a small vocabulary people can filter on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DIRECTIONS = ("front", "rear", "left", "right", "top", "bottom", "side", "end")
VIEW_TYPES = ("perspective", "elevation", "plan", "section", "detail", "exploded", "enlarged", "in-use", "reference")

_DIRECTION_WORDS = {
    "front": "front",
    "frontal": "front",
    "rear": "rear",
    "back": "rear",
    "left": "left",
    "right": "right",
    "top": "top",
    "upper": "top",
    "overhead": "top",
    "above": "top",
    "bottom": "bottom",
    "lower": "bottom",
    "underside": "bottom",
    "underneath": "bottom",
    "below": "bottom",
    "side": "side",
    "end": "end",
}
# "side" and "end" only say "not front/top": "left side view" names left, "left end view" left too.
_WEAK_DIRECTIONS = ("side", "end")
_TYPE_PATTERNS = [
    ("exploded", re.compile(r"\bexploded\b")),
    ("section", re.compile(r"\b(?:cross[- ]?)?section(?:al)?\b")),
    ("detail", re.compile(r"\bdetail(?:ed)?\b|\bpartial\b")),
    ("enlarged", re.compile(r"\b(?:enlarged|magnified|close[- ]up)\b")),
    ("in-use", re.compile(r"\bin[- ]use\b|\benvironment(?:al)?\b|\buse state\b")),
    ("perspective", re.compile(r"\b(?:perspective|isometric|axonometric|oblique|trimetric|dimetric)\b")),
    ("elevation", re.compile(r"\belevation(?:al)?\b")),
    ("plan", re.compile(r"\bplan\b")),
    # Hague "Reference view": an auxiliary view (use, movement, state), weaker than any named type.
    ("reference", re.compile(r"\breference\b")),
]
_WORD = re.compile(r"[a-z]+")
# The view phrase ends where the object begins ("... view of a shoe", "... view thereof").
_HEAD_END = re.compile(r"\b(?:of|thereof|showing|illustrating|according|for|taken|in which|with|wherein)\b|[;:.(]")
_IN_USE = re.compile(r"\bin[- ]use\b|\benvironment(?:al)?\b|\buse state\b|\bstate of use\b")
# Misspellings seen in grants, fixed inside the view phrase only: "a from view" (USD0937859), "a prespective view".
_TYPO_FIXES = {"from": "front", "fron": "front", "font": "front", "botton": "bottom", "rigth": "right"} | dict.fromkeys(
    ("prespective", "perpective", "persective", "perspecitve", "perspectve", "pespective"), "perspective")
_TYPOS = re.compile(r"\b(?P<article>(?:a|an|the) )?(?P<word>(?:from|fron|font)(?=\s+view)|"
                    + "|".join(k for k, v in _TYPO_FIXES.items() if v != "front") + r")\b")
# The direction said after the view word: "an elevational view of the front thereof", "viewed from above".
_SIDE_NAMED_AFTER = re.compile(
    r"\b(?:view(?:ed)?|seen|looking)\s+(?:of|from|at)\s+(?:the\s+)?"
    r"(?P<dir>front|rear|back|left|right|top|bottom|underside|above|below|underneath)"
    r"(?=\s*(?:side\b|end\b|thereof\b|of\b|[;:,.]|$))"
)


_LEADING_VERB = re.compile(r"^\s*(?:is|are)\s+")


def _fix_typo(m: re.Match[str]) -> str:
    if _TYPO_FIXES[m["word"]] == "front" and not m["article"]:
        return m[0]  # "a view from the top" is no typo
    return (m["article"] or "") + _TYPO_FIXES[m["word"]]


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
    text = _LEADING_VERB.sub("", text, count=1)
    m = _HEAD_END.search(text)
    return _TYPOS.sub(_fix_typo, text[: m.start()] if m else text[:120])


def normalise_view(description: str) -> View:
    """Direction (first one named) + type; orthographic elevation/plan views with a direction are that direction."""
    view = _normalise_head(view_head(description))
    text = description.lower()
    if not view.direction and (m := _SIDE_NAMED_AFTER.search(text)):
        view = _compose(_DIRECTION_WORDS[m["dir"]], view.type)
    if view.type in ("", "reference") and _IN_USE.search(text):
        return _compose(view.direction, "in-use")
    return view


def head_directions(description: str) -> list[str]:
    """Every direction the view phrase names, in order ('left and right side views' -> left, right, side)."""
    words = _WORD.findall(view_head(description).replace("-", " "))
    return [_DIRECTION_WORDS[w] for w in words if w in _DIRECTION_WORDS]


def with_direction(view: View, direction: str) -> View:
    """The same type seen from another direction (one FIG. of 'left and right side views, respectively')."""
    return _compose(direction, view.type)


def _compose(direction: str, kind: str) -> View:
    if kind in ("elevation", "plan") and direction:
        return View(direction, direction, kind)
    if not kind and not direction:
        return UNKNOWN
    return View(" ".join(p for p in (direction, kind) if p), direction, kind)


@lru_cache(maxsize=4096)
def _normalise_head(head: str) -> View:
    """Cached: a week repeats the same few hundred view phrases ("a top plan view") thousands of times."""
    words = _WORD.findall(head.replace("-", " "))
    named = [_DIRECTION_WORDS[w] for w in words if w in _DIRECTION_WORDS]
    # "left side view" names left, "opposite side front view" front; a bare "side" or "end" stays that.
    direction = next((d for d in named if d not in _WEAK_DIRECTIONS), named[0] if named else "")
    kind = next((name for name, pat in _TYPE_PATTERNS if pat.search(head)), "")
    return _compose(direction, kind)
