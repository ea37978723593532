"""Views that a FIG. takes from another ("a second image thereof", "another embodiment of ..."), GUI image order."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TypeVar

from designclip.pipeline.ingest.views import View

_ORDINALS = {
    w: i
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
        "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(),
        start=1,
    )
}
# "a first image in a sequence", "the second image thereof", "another image", "a third frame of the animation".
_IMAGE = re.compile(
    r"\b(?P<word>[a-z]+|\d+(?:st|nd|rd|th))\s+(?:(?:animated|transitional|subsequent|sequential|intermediate)\s+)?"
    r"(?:image|frame)s?\b"
)
_NEXT_WORDS = ("another", "next", "subsequent", "following", "further", "additional", "final", "last")
# Animated designs say so ("animated graphical user interface", "sequentially transitions between the images"):
# only there is "a second image"/"another frame" a step of a sequence ("a first frame member" of a bed is not).
_ANIMATED = re.compile(r"animat|sequen|transition", re.IGNORECASE)
# A FIG. that opens an embodiment: "a second embodiment", "another embodiment", "an alternate embodiment".
_NEW_EMBODIMENT = re.compile(r"\b(?:an?|another)\s+(?:[a-z-]+\s+){0,2}?embodiments?\b")
_ANOTHER_EMBODIMENT = re.compile(r"\b(?:another|other|alternat(?:e|ive)|second|third|further|additional|modified)"
                                 r"\s+(?:[a-z-]+\s+)?embodiment\b")
# "a view similar to FIG. 3", "the same view as FIG. 2", "a second image of FIG. 5".
_SAME_AS = re.compile(
    r"\b(?:similar|same|identical|corresponding|like|image|frame)\b[^;]*?\bFIG(?:URE)?\.?\s*(?P<ref>\d+(?:\.\d+)?[A-Z]?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SequencedFigure:
    """A FIG. with the view it ends up with, where that view came from, and its place in a GUI image sequence."""

    fig: str
    view: View
    description: str | None
    image_index: int | None = None
    view_inherited_from: str | None = None


F = TypeVar("F", bound=SequencedFigure)


def image_word(description: str | None) -> str | None:
    """'second', 'another', '3rd' when the FIG. is one image of a sequence; None otherwise."""
    if not description or ("image" not in description and "frame" not in description):
        return None
    for m in _IMAGE.finditer(description.lower()):
        word = m["word"]
        if word in _ORDINALS or word in _NEXT_WORDS or word[0].isdigit():
            return word
    return None


def _ordinal(word: str) -> int | None:
    if word[0].isdigit():
        return int(re.sub(r"\D", "", word))
    return _ORDINALS.get(word)


def is_animated(paragraphs: list[str]) -> bool:
    """Whether the description of drawings speaks of an image sequence (animated GUI designs)."""
    return any(_ANIMATED.search(p) for p in paragraphs)


def number_images(figures: list[F]) -> list[F]:
    """`image_index` 1, 2, 3 ... along each image sequence; 'first image' starts a new one, 'another' counts on."""
    out = list(figures)
    last: int | None = None
    previous: int | None = None  # position of the last FIG. with a description
    for i, f in enumerate(out):
        word = image_word(f.description)
        if word is not None:
            index = _ordinal(word)
            if index is None:
                index = last + 1 if last is not None else 2
            if index == 2 and last is None and previous is not None and out[previous].image_index is None:
                out[previous] = replace(out[previous], image_index=1)  # "FIG. 2 is another image" numbers FIG. 1
            out[i] = replace(f, image_index=index)
            last = index
        if f.description is not None:
            previous = i
    return out


def inherit_views(figures: list[F], animated: bool) -> list[F]:
    """A FIG. whose text names no view but refers to another FIG. takes that FIG.'s view (marked, never guessed)."""
    out = list(figures)
    by_fig = {f.fig: i for i, f in enumerate(out)}
    embodiment_start = 0  # the FIG. that opened the embodiment in force
    previous: int | None = None
    for i, f in enumerate(out):
        text = (f.description or "").lower()
        source: int | None = None
        if f.description is not None and f.view.view == "unknown":
            same = _SAME_AS.search(f.description)
            if same and by_fig.get(same["ref"].upper(), i) < i:
                source = by_fig[same["ref"].upper()]
            elif _ANOTHER_EMBODIMENT.search(text) and i > 0:
                source = embodiment_start
            elif animated and (word := image_word(f.description)) and _ordinal(word) != 1 and previous is not None:
                source = previous
        if source is not None and out[source].view.view != "unknown":
            root = out[source].view_inherited_from or out[source].fig
            out[i] = replace(f, view=out[source].view, view_inherited_from=root)
        if i > 0 and _NEW_EMBODIMENT.search(text):
            embodiment_start = i
        if f.description is not None:
            previous = i
    return out
