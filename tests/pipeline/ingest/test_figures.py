"""FIG. references and per-FIG. descriptions, on phrases taken from the real fixture patents."""

from __future__ import annotations

import pytest
from designclip.pipeline.ingest.figures import (
    FigureDescription,
    broken_lines_statement,
    describe_figures,
    expand_figure_refs,
)
from designclip.pipeline.ingest.views import View


def figs(rows: list[FigureDescription]) -> list[str]:
    return [r.fig for r in rows]


def views(rows: list[FigureDescription]) -> list[str]:
    return [r.view.view for r in rows]


# --- expand_figure_refs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ("1-7", ["1", "2", "3", "4", "5", "6", "7"]),
        ("1 and 2", ["1", "2"]),
        ("2, 3, 5, 6, and 7", ["2", "3", "5", "6", "7"]),
        ("1A-1C", ["1A", "1B", "1C"]),
        ("1A through 1C", ["1A", "1B", "1C"]),
        ("1 to 3", ["1", "2", "3"]),
        ("1 through 3", ["1", "2", "3"]),
        ("1–3", ["1", "2", "3"]),  # en dash
        ("4 & 5", ["4", "5"]),
        ("1, 2 and 3", ["1", "2", "3"]),
        ("12", ["12"]),
        ("3a", ["3A"]),
        ("92", ["92"]),
    ],
)
def test_expand_figure_refs(refs: str, expected: list[str]) -> None:
    assert expand_figure_refs(refs) == expected


# --- describe_figures ----------------------------------------------------------------------------------------


def test_plural_range_expands_to_one_row_per_fig() -> None:
    rows, statements = describe_figures(
        [
            "FIGS. 1-3 are perspective views thereof;",
            "FIG. 4 is a top plan view thereof; and,",
            "The broken lines shown in FIGS. 1-4 form no part of the claimed design.",
        ]
    )
    assert figs(rows) == ["1", "2", "3", "4"]
    assert views(rows) == ["perspective", "perspective", "perspective", "top"]
    assert rows[0].description == "perspective views thereof"
    assert rows[3].description == "a top plan view thereof"
    assert rows[3].view == View("top", "top", "plan")
    assert statements == ["The broken lines shown in FIGS. 1-4 form no part of the claimed design."]


def test_real_spoon_paragraphs() -> None:
    """USD0909824's description-of-drawings, as itertext() yields it (figref text inline)."""
    rows, statements = describe_figures(
        [
            "FIG. 1 is a perspective view of the soccer sport spoon with the spoon bowl as a soccer ball and the "
            "spoon handle as a soccer lower leg, sock, and shoe showing my design;",
            "FIG. 2 is a top view thereof;",
            "FIG. 3 is a bottom thereof;",
            "FIG. 4 is a front side view thereof;",
            "FIG. 5 is a back side view thereof;",
            "FIG. 6 is a left side view thereof; and,",
            "FIG. 7 is a right side view thereof.",
            "The broken lines shown in FIGS. 1-7 represent the portions of the design which form no part of the "
            "claimed design, such as ball seams, transitions, shoe and sock lines.",
        ]
    )
    assert figs(rows) == [str(i) for i in range(1, 8)]
    assert views(rows) == ["perspective", "top", "bottom", "front", "rear", "left", "right"]
    assert rows[5].description == "a left side view thereof"
    assert len(statements) == 1 and statements[0].startswith("The broken lines shown in FIGS. 1-7")


def test_whitespace_inside_paragraph_is_collapsed() -> None:
    rows, _ = describe_figures(["FIG.  2\n  is a   top view\nthereof;"])
    assert rows == [FigureDescription("2", View("top", "top", ""), "a top view thereof")]


def test_hague_reproductions_and_product_line() -> None:
    rows, statements = describe_figures(
        ["1. Display screen for automobile", "1.1 : Perspective", "1.2 : Front", "1.3 : Back", "1.7 : Reference view"]
    )
    assert figs(rows) == ["1.1", "1.2", "1.3", "1.7"]
    assert views(rows) == ["perspective", "front", "rear", "reference"]  # a Hague "Reference view" is a type
    assert rows[3].description == "Reference view"
    assert statements == ["1. Display screen for automobile"]


def test_the_figure_is_fig_1() -> None:
    rows, statements = describe_figures(
        [
            "The FIGURE is a front view of a display screen or portion thereof with a graphical user interface "
            "showing the new design.",
            "The broken lines shown in the FIGURE represent portions of the display screen.",
        ]
    )
    assert figs(rows) == ["1"]
    assert views(rows) == ["front"]
    assert statements == ["The broken lines shown in the FIGURE represent portions of the display screen."]


def test_the_sole_figure() -> None:
    rows, _ = describe_figures(["The sole figure is a top plan view of a fabric."])
    assert figs(rows) == ["1"]
    assert views(rows) == ["top"]


def test_fig_without_verb() -> None:
    rows, _ = describe_figures(["FIG. 4 a perspective view thereof."])
    assert rows == [FigureDescription("4", View("perspective", "", "perspective"), "a perspective view thereof")]


@pytest.mark.parametrize(
    "paragraph",
    [
        "FIG. 3 shows a bottom view thereof.",
        "FIG. 3: a bottom view thereof.",
        "Fig. 3 is a bottom view thereof.",
        "FIGURE 3 is a bottom view thereof.",
        "FIG.3 is a bottom view thereof.",
    ],
)
def test_lead_variants(paragraph: str) -> None:
    rows, statements = describe_figures([paragraph])
    assert figs(rows) == ["3"]
    assert rows[0].description == "a bottom view thereof"
    assert statements == []


def test_first_mention_wins_and_order_kept() -> None:
    rows, _ = describe_figures(["FIG. 10 is a top view;", "FIG. 1 is a side view;", "FIG. 10 is a rear view."])
    assert figs(rows) == ["10", "1"]
    assert views(rows) == ["top", "side"]


def test_statements_are_separated() -> None:
    paragraphs = [
        "The file of this patent contains at least one drawing/photograph executed in color.",
        "FIG. 1 is a top plan view of a fabric with surface pattern according to a first embodiment; and,",
        "FIG. 2 is a top plan view of a fabric with surface pattern according to a second embodiment.",
        "First and second side views, a back view, and top and bottom views of the second embodiment viewed in "
        "FIG. 8 are not provided because they are the same as FIGS. 2, 3, 5, 6, and 7 respectively.",
        "   ",
    ]
    rows, statements = describe_figures(paragraphs)
    assert figs(rows) == ["1", "2"]
    assert views(rows) == ["top", "top"]
    assert statements == [paragraphs[0], paragraphs[3]]


def test_no_paragraphs() -> None:
    assert describe_figures([]) == ([], [])


def test_repeated_fig_word_in_lead() -> None:
    rows, _ = describe_figures(["FIG. 1 and FIG. 2 are front views thereof."])
    assert figs(rows) == ["1", "2"]
    assert views(rows) == ["front", "front"]


# --- broken_lines_statement ----------------------------------------------------------------------------------


def test_broken_lines_statement() -> None:
    statements = [
        "The file of this patent contains at least one drawing executed in color.",
        "The evenly-dashed broken lines in the drawings illustrate the portions that form no part of the claim.",
        "The stippling present in portions of the drawings indicates a transitory contrast.",
        "The dash dot dot dash lines depict the boundaries of the claim.",
    ]
    assert broken_lines_statement(statements) == f"{statements[1]} {statements[3]}"
    assert broken_lines_statement(statements[:1]) is None
    assert broken_lines_statement([]) is None
