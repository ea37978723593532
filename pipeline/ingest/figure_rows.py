"""Exactly `number-of-figures` FIG. rows per patent, whatever the description says, with every doubt flagged.

How a mismatch between the description and `number-of-figures` (N) is resolved:
- N is the count the Office printed and the drawing sheets carry; the rows are its N FIG.s, in FIG. order. When
  every described FIG. is numbered 1, 2, 3 ... (or Hague 1.1, 1.2 ...), the rows are FIG. 1..N.
- A FIG. the description repeats or numbers past N, sitting exactly where an undescribed FIG. belongs (after FIG. 3,
  FIG. 4 never described), is that FIG. (a typo): it takes the number, flagged "described as FIG. x".
- A FIG. of 1..N that nothing describes gets a row: view `unknown`, flagged "not described in the XML".
- FIG.s described past N (that no gap explains) are left out of the rows; every row of the patent is flagged with
  them, and the week's stats count them.
- Other numberings (1A, 1B, 2 ...) keep the described FIG.s in order, cut to N or filled with rows '?k'.
- Without a usable N (absent or 0), the rows are the described FIG.s, unflagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from designclip.pipeline.ingest.figure_sequences import SequencedFigure, inherit_views, is_animated, number_images
from designclip.pipeline.ingest.figures import FigureDescription, read_drawing_text, refines
from designclip.pipeline.ingest.views import UNKNOWN

_INT = re.compile(r"^\d+$")
_HAGUE = re.compile(r"^(\d+)\.(\d+)$")


@dataclass(frozen=True)
class FigureRow(SequencedFigure):
    """One row of the `figures` table before the patent's columns are added."""

    figure_flag: str | None = None


@dataclass(frozen=True)
class FigureCheck:
    """How the description's FIG.s matched `number-of-figures`: what was added, renumbered or left out."""

    expected: int | None
    described: int
    undescribed: tuple[str, ...] = ()
    renumbered: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()

    @property
    def mismatch(self) -> bool:
        return bool(self.undescribed or self.renumbered or self.left_out)


@dataclass
class FigureTable:
    """The FIG. rows of one patent, the statements beside them, and the count check."""

    rows: list[FigureRow]
    statements: list[str]
    check: FigureCheck


def _expected_labels(labels: list[str], n: int) -> list[str] | None:
    """FIG. 1..N, or Hague p.1..p.N; None when the numbering says nothing about the missing labels."""
    if all(_INT.match(x) for x in labels):
        return [str(i) for i in range(1, n + 1)]
    prefixes = {m.group(1) for m in map(_HAGUE.match, labels) if m}
    if len(prefixes) == 1 and all(_HAGUE.match(x) for x in labels):
        p = prefixes.pop()
        return [f"{p}.{i}" for i in range(1, n + 1)]
    return None


def _assign(mentions: list[FigureDescription], expected: list[str],
            named: set[str]) -> tuple[dict[str, FigureDescription], dict[str, str], list[str]]:
    """Described FIG.s by label; a repeat or an out-of-range number filling the gap right after its neighbour."""
    wanted = set(expected)
    assigned: dict[str, FigureDescription] = {}
    renamed: dict[str, str] = {}
    extra: list[str] = []
    last: str | None = None
    for m in mentions:
        if m.fig in wanted and m.fig not in assigned:
            assigned[m.fig] = m
            last = m.fig
            continue
        gap = expected[expected.index(last) + 1] if last is not None and last != expected[-1] else None
        if last is None and expected[0] not in named:
            gap = expected[0]
        if gap is not None and gap not in named and gap not in assigned:
            assigned[gap] = FigureDescription(gap, m.view, m.description)
            renamed[gap] = m.fig
            last = gap
        elif m.fig not in wanted and m.fig not in extra:
            extra.append(m.fig)
    return assigned, renamed, extra


def _first_mentions(mentions: list[FigureDescription]) -> dict[str, FigureDescription]:
    out: dict[str, FigureDescription] = {}
    for m in mentions:
        out.setdefault(m.fig, m)
    return out


def figure_table(paragraphs: list[str], num_figures: int | None) -> FigureTable:
    """Rows for every FIG. of a patent: exactly `num_figures` of them when the XML gives that count."""
    text = read_drawing_text(paragraphs)
    mentions = text.mentions
    labels = list(dict.fromkeys(m.fig for m in [*mentions, *text.asides]))
    n = num_figures if num_figures and num_figures > 0 else None
    expected = _expected_labels(labels, n) if n else None
    renamed: dict[str, str] = {}
    left_out: list[str] = []
    if expected is not None:
        described, renamed, left_out = _assign(mentions, expected, set(labels))
        order = expected
    else:
        described = _first_mentions(mentions)
        order = list(dict.fromkeys([*described, *(a.fig for a in text.asides)]))
    for aside in text.asides:
        have = described.get(aside.fig)
        if (have is None and aside.fig in order) or (have is not None and refines(aside.view, have.view)):
            described[aside.fig] = aside
    if expected is None and n is not None:
        left_out = order[n:]
        order = order[:n] + [f"?{k}" for k in range(len(order) + 1, n + 1)]
    undescribed = [fig for fig in order if fig not in described]
    rows = [
        FigureRow(fig, described[fig].view, described[fig].description) if fig in described
        else FigureRow(fig, UNKNOWN, None)
        for fig in order
    ]
    animated = is_animated(paragraphs)
    rows = inherit_views(number_images(rows) if animated else rows, animated)
    check = FigureCheck(n, len(_first_mentions([*mentions, *text.asides])), tuple(undescribed),
                        tuple(renamed), tuple(left_out))
    return FigureTable(_flag(rows, check, renamed), text.statements, check)


def _flag(rows: list[FigureRow], check: FigureCheck, renamed: dict[str, str]) -> list[FigureRow]:
    """`figure_flag` on each doubtful row, saying why in words a user can check against the drawings."""
    n_desc = f"number-of-figures is {check.expected}, the description names {check.described}"
    patent_wide = (f"the description also names FIG. {', '.join(check.left_out)} beyond number-of-figures "
                   f"{check.expected}; left out") if check.left_out else None
    out = []
    for r in rows:
        notes = []
        if r.fig in check.undescribed:
            notes.append(f"not described in the XML ({n_desc})")
        if r.fig in renamed:
            notes.append(f"described as FIG. {renamed[r.fig]} (a repeated or out-of-range number); "
                         f"taken as FIG. {r.fig} by its place in the list")
        if patent_wide:
            notes.append(patent_wide)
        out.append(replace(r, figure_flag="; ".join(notes)) if notes else r)
    return out
