"""Turn the "Brief Description of Drawings" into one row per FIG. plus the statements (broken lines, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.views import View, normalise_view

# "FIG. 1 is", "FIGS. 1-3 are", "FIGS. 4 and 5 are", "FIGURE 2 is", "FIGS. 1A through 1C are"
_FIG_LEAD = re.compile(
    r"^\s*(?:FIG(?:URE)?S?\.?)\s*"
    r"(?P<refs>[0-9]+[A-Z]?(?:\s*(?:-|–|—|,\s*and|,|and|&|to|through)\s*(?:FIG(?:URE)?S?\.?\s*)?[0-9]+[A-Z]?)*)"
    r"(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
# Hague-style reproductions: "1.1 : Perspective"
_REPRODUCTION = re.compile(r"^\s*(?P<ref>\d+\.\d+)\s*:\s*(?P<rest>.+)$", re.DOTALL)
_SINGLE_FIGURE = re.compile(r"^\s*The\s+(?:sole\s+)?FIGURE\b\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_RANGE = re.compile(r"^(?P<a>\d+)(?P<sa>[A-Z]?)\s*(?:-|–|—|to|through)\s*(?P<b>\d+)(?P<sb>[A-Z]?)$", re.IGNORECASE)


@dataclass(frozen=True)
class FigureDescription:
    """One FIG. of a patent: its number as printed, its view, and the sentence that described it."""

    fig: str
    view: View
    description: str


def expand_figure_refs(refs: str) -> list[str]:
    """'1-3' -> 1,2,3; '4 and 5' -> 4,5; '1A-1C' -> 1A,1B,1C; '2, 3, and 7' -> 2,3,7."""
    out: list[str] = []
    refs = re.sub(r"FIG(?:URE)?S?\.?", " ", refs, flags=re.IGNORECASE)
    for part in re.split(r"\s*(?:,\s*and|,|\band\b|&)\s*", refs.strip(), flags=re.IGNORECASE):
        if not part:
            continue
        m = _RANGE.match(part)
        if m and m["sa"] and m["sb"] and m["a"] == m["b"]:
            out += [f"{m['a']}{chr(c)}" for c in range(ord(m["sa"].upper()), ord(m["sb"].upper()) + 1)]
        elif m and not m["sa"] and not m["sb"] and int(m["a"]) <= int(m["b"]) <= int(m["a"]) + 500:
            out += [str(i) for i in range(int(m["a"]), int(m["b"]) + 1)]
        else:
            out.append(part.upper())
    return out


def _clean(text: str) -> str:
    return " ".join(text.split())


def _strip_verb(rest: str) -> str:
    """Drop the leading 'is'/'are'/':' so the description starts at the view ('a front view thereof')."""
    return re.sub(r"^\s*(?::|(?:is|are|shows?|illustrates?|depicts?)\b)\s*", "", rest, flags=re.IGNORECASE)


def describe_figures(paragraphs: list[str]) -> tuple[list[FigureDescription], list[str]]:
    """Split paragraphs into FIG. descriptions (in order, first mention wins) and the other statements."""
    figures: dict[str, FigureDescription] = {}
    statements: list[str] = []
    for raw in paragraphs:
        text = _clean(raw)
        if not text:
            continue
        refs: list[str] = []
        m = _FIG_LEAD.match(text)
        if m and (not m["rest"] or m["rest"][0] in " :;,"):
            refs, rest = expand_figure_refs(m["refs"]), m["rest"]
        elif r := _REPRODUCTION.match(text):
            refs, rest = [r["ref"]], r["rest"]
        elif s := _SINGLE_FIGURE.match(text):
            refs, rest = ["1"], s["rest"]
        if not refs:
            statements.append(text)
            continue
        desc = _clean(_strip_verb(rest)).rstrip(";,. ")
        desc = re.sub(r"[;,]?\s*and\s*$", "", desc)
        for fig in refs:
            figures.setdefault(fig, FigureDescription(fig, normalise_view(desc), desc))
    return list(figures.values()), statements


def broken_lines_statement(statements: list[str]) -> str | None:
    """The statements about broken/dashed lines (what forms no part of the claim), joined; None if absent."""
    hits = [s for s in statements if re.search(r"broken[- ]?lines?|dash|dotted|phantom", s, re.IGNORECASE)]
    return " ".join(hits) or None
