"""Turn the "Brief Description of Drawings" into FIG. descriptions (one per FIG. mention) plus the statements."""

from __future__ import annotations

import re
from dataclasses import dataclass

from designclip.pipeline.ingest.views import View, head_directions, normalise_view, with_direction

_FIG_WORD = r"(?:FIG(?:URE)?S?\.?|Reproductions?)"
_REF = r"[0-9]+(?:\.[0-9]+)?[A-Z]?"
_JOIN = r"(?:-|–|—|,\s*and|,|and|&|to|through)"
# "FIG. 1 is", "FIGS. 1-3 are", "FIGS. 4 and 5 are", "FIGURE 2 is", "FIGS. 1A through 1C are", "Reproduction 1.8 is"
_FIG_LEAD = re.compile(
    rf"^\s*{_FIG_WORD}\s*(?P<refs>{_REF}(?:\s*{_JOIN}\s*(?:{_FIG_WORD}\s*)?{_REF})*)(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
# Hague-style reproductions: "1.1 : Perspective", "1.8 is an enlarged partial perspective view", "1.8 and 1.9 are ..."
_REPRODUCTION = re.compile(
    r"^\s*(?P<refs>\d+\.\d+(?:\s*(?:-|–|—|,\s*and|,|and|&|to|through)\s*\d+\.\d+)*)"
    r"(?P<rest>\s*[:\-–—]\s*.+|\s+(?:is|are)\b.+|\s+[A-Z].*)$",
    re.DOTALL,
)
_SINGLE_FIGURE = re.compile(r"^\s*The\s+(?:sole\s+)?FIGURE\b\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_RANGE = re.compile(r"^(?P<a>\d+)(?P<sa>[A-Z]?)\s*(?:-|–|—|to|through)\s*(?P<b>\d+)(?P<sb>[A-Z]?)$", re.IGNORECASE)
_HAGUE_RANGE = re.compile(r"^(?P<p>\d+)\.(?P<a>\d+)\s*(?:-|–|—|to|through)\s*(?P=p)\.(?P<b>\d+)$", re.IGNORECASE)
_VERB = r"(?::|(?:is|are|shows?|illustrates?|depicts?)\b)"
# Where a new FIG. clause starts inside a paragraph: "...thereof; FIG. 3 is ...", "...; and reproduction 1.2 is ...".
_CLAUSE_START = re.compile(
    rf"[;,.]\s*(?:(?:and|or)\b,?\s*)?(?=(?:{_FIG_WORD}\s*{_REF}(?:\s*{_JOIN}\s*(?:{_FIG_WORD}\s*)?{_REF})*"
    rf"|\d+\.\d+(?:\s*{_JOIN}\s*\d+\.\d+)*)\s*{_VERB})",
    re.IGNORECASE,
)
_AFTER_FIG_WORD = re.compile(rf"{_FIG_WORD}\s*$", re.IGNORECASE)
_REF_FIG_WORD = re.compile(r"FIG(?:URE)?S?\.?|Reproductions?", re.IGNORECASE)
_REF_SPLIT = re.compile(r"\s*(?:,\s*and|,|\band\b|&)\s*", re.IGNORECASE)
_LEADING_VERB = re.compile(r"^\s*(?:[:\-–—]|(?:is|are|shows?|illustrates?|depicts?)\b)\s*", re.IGNORECASE)
_TRAILING_AND = re.compile(r"[;,]?\s*and\s*$")
_RESPECTIVELY = re.compile(r"\brespectively\b", re.IGNORECASE)
_OPPOSITES = {frozenset(p) for p in (("left", "right"), ("front", "rear"), ("top", "bottom"))}


@dataclass(frozen=True)
class FigureDescription:
    """One FIG. of a patent: its number as printed, its view, and the sentence that described it."""

    fig: str
    view: View
    description: str


@dataclass(frozen=True)
class DrawingText:
    """Everything the description of drawings says: FIG. mentions in order (repeats kept) and the statements."""

    mentions: list[FigureDescription]
    # FIG. clauses found inside statements ("...; reproduction 1.1 is a front perspective view ...").
    asides: list[FigureDescription]
    statements: list[str]


def expand_figure_refs(refs: str) -> list[str]:
    """'1-3' -> 1,2,3; '4 and 5' -> 4,5; '1A-1C' -> 1A,1B,1C; '2, 3, and 7' -> 2,3,7; '1.1 to 1.3' -> 1.1,1.2,1.3."""
    if refs.isdigit():
        return [refs]  # "FIG. 3": most leads, no splitting needed
    out: list[str] = []
    for part in _REF_SPLIT.split(_REF_FIG_WORD.sub(" ", refs).strip()):
        if not part:
            continue
        m = _RANGE.match(part)
        h = _HAGUE_RANGE.match(part)
        if m and m["sa"] and m["sb"] and m["a"] == m["b"]:
            out += [f"{m['a']}{chr(c)}" for c in range(ord(m["sa"].upper()), ord(m["sb"].upper()) + 1)]
        elif m and not m["sa"] and not m["sb"] and int(m["a"]) <= int(m["b"]) <= int(m["a"]) + 500:
            out += [str(i) for i in range(int(m["a"]), int(m["b"]) + 1)]
        elif h and int(h["a"]) <= int(h["b"]) <= int(h["a"]) + 500:
            out += [f"{h['p']}.{i}" for i in range(int(h["a"]), int(h["b"]) + 1)]
        else:
            out.append(part.upper())
    return out


def _clean(text: str) -> str:
    return " ".join(text.split())


def _strip_verb(rest: str) -> str:
    """Drop the leading 'is'/'are'/':' so the description starts at the view ('a front view thereof')."""
    return _LEADING_VERB.sub("", rest, count=1)


Lead = tuple[list[str], str]


def _lead(clause: str) -> Lead | None:
    """The FIG.s a clause describes and the rest of it, or None when the clause is not a FIG. description."""
    m = _FIG_LEAD.match(clause)
    if m and (not m["rest"] or m["rest"][0] in " :;,"):
        return expand_figure_refs(m["refs"]), m["rest"]
    if r := _REPRODUCTION.match(clause):
        return expand_figure_refs(r["refs"]), r["rest"]
    if s := _SINGLE_FIGURE.match(clause):
        return ["1"], s["rest"]
    return None


def _clauses(text: str) -> list[tuple[str, Lead | None]]:
    """A paragraph cut before each FIG. clause; a bare lead ('FIG. 1,' of 'FIG. 1, FIG. 2 are') joins the next."""
    cuts = [0]
    for m in _CLAUSE_START.finditer(text):
        if not _AFTER_FIG_WORD.search(text, max(0, m.start() - 15), m.start() + 1):  # "FIG. 1.1 is" is one lead
            cuts.append(m.end())
    if len(cuts) == 1:
        return [(text, _lead(text))]
    cuts.append(len(text))
    out: list[tuple[str, Lead | None]] = []
    carry = ""
    for part in (text[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False)):
        lead = _lead(part)
        if lead is not None and not _strip_verb(lead[1]).strip(" ;,."):
            carry += part.rstrip(";,. ") + " and "
        elif lead is None and out:
            # A cut that opens no FIG. clause stays with the clause before it.
            out[-1] = (f"{out[-1][0]} {part}", _lead(f"{out[-1][0]} {part}"))
        elif carry:
            out.append((carry + part, _lead(carry + part)))
            carry = ""
        else:
            out.append((part, lead))
    if carry:
        out.append((carry.removesuffix(" and "), _lead(carry.removesuffix(" and "))))
    return [c for c in out if c[0]]


def _describe(refs: list[str], rest: str) -> list[FigureDescription]:
    """One description per FIG.; 'FIGS. 4 and 5 are left and right side views' gives each its own direction."""
    desc = _strip_verb(rest).strip().rstrip(";,. ")  # `rest` is already _clean
    if desc.endswith("and"):
        desc = _TRAILING_AND.sub("", desc)
    view = normalise_view(desc)
    if len(refs) > 1:
        named = list(dict.fromkeys(d for d in head_directions(desc) if d not in ("side", "end")))
        if len(named) == len(refs) and (
            _RESPECTIVELY.search(desc) or (len(named) == 2 and frozenset(named) in _OPPOSITES)
        ):
            return [FigureDescription(f, with_direction(view, d), desc) for f, d in zip(refs, named, strict=True)]
    return [FigureDescription(fig, view, desc) for fig in refs]


def read_drawing_text(paragraphs: list[str]) -> DrawingText:
    """Every FIG. clause in order; a paragraph that does not open with one is a statement (its FIG. clauses asides)."""
    mentions: list[FigureDescription] = []
    asides: list[FigureDescription] = []
    statements: list[str] = []
    for raw in paragraphs:
        text = _clean(raw)
        if not text:
            continue
        clauses = _clauses(text)
        primary = clauses[0][1] is not None
        if not primary:
            statements.append(text)
        for _, lead in clauses:
            if lead is None:
                continue
            if primary:
                mentions.extend(_describe(*lead))
            else:  # running text: the aside ends at its clause's ';' ("...; this design is for ...")
                asides.extend(_describe(lead[0], lead[1].split(";", 1)[0]))
    return DrawingText(mentions, asides, statements)


def refines(better: View, view: View) -> bool:
    """Whether `better` says all `view` says and more (an aside 'a front perspective view' for 'Perspective')."""
    if better.view == "unknown" or better == view:
        return False
    if view.view == "unknown" or view.type == "reference":
        return True
    return view.type in ("", better.type) and view.direction in ("", better.direction)


def describe_figures(paragraphs: list[str]) -> tuple[list[FigureDescription], list[str]]:
    """FIG. descriptions in order (first mention wins, asides fill what it leaves unknown) and the statements."""
    text = read_drawing_text(paragraphs)
    figures: dict[str, FigureDescription] = {}
    for f in text.mentions:
        figures.setdefault(f.fig, f)
    for f in text.asides:
        if f.fig not in figures or refines(f.view, figures[f.fig].view):
            figures[f.fig] = f
    return list(figures.values()), text.statements


def broken_lines_statement(statements: list[str]) -> str | None:
    """The statements about broken/dashed lines (what forms no part of the claim), joined; None if absent."""
    hits = [s for s in statements if re.search(r"broken[- ]?lines?|dash|dotted|phantom", s, re.IGNORECASE)]
    return " ".join(hits) or None
