"""View normalisation: free-text view names from the real fixture patents mapped to a small vocabulary."""

from __future__ import annotations

import pytest
from designclip.pipeline.ingest.views import UNKNOWN, View, normalise_view, view_head


@pytest.mark.parametrize(
    ("description", "view", "direction", "type_"),
    [
        ("a left-side elevation view thereof", "left", "left", "elevation"),
        (
            "a front, bottom, right-side perspective view of a keyboard including a control bar",
            "front perspective",
            "front",
            "perspective",
        ),
        ("an isometric view of our design for a coupling segment", "perspective", "", "perspective"),
        ("a top view perspective view thereof", "top perspective", "top", "perspective"),
        ("Reference view", "reference", "", "reference"),
        ("Reference view 2", "reference", "", "reference"),
        ("a from view of a display screen", "front", "front", ""),  # sic, USD0937859: the typo read as "front"
        ("a front elevational of the game housing of FIG. 1", "front", "front", "elevation"),
        ("a back side view thereof", "rear", "rear", ""),
        ("a bottom thereof", "bottom", "bottom", ""),
        ("a top plan view thereof", "top", "top", "plan"),
        ("a right-side elevational view of the keyboard shown in FIG. 1", "right", "right", "elevation"),
        ("a perspective top and front view showing our new design", "top perspective", "top", "perspective"),
        (
            "an open configuration, top perspective view of the game housing component",
            "top perspective",
            "top",
            "perspective",
        ),
        ("a side view thereof", "side", "side", ""),
        ("an opposite side rear perspective view thereof", "rear perspective", "rear", "perspective"),
        ("a heel side view of the golf club head of FIG. 1", "side", "side", ""),
        (
            "a front and left perspective view of a vehicle front lower fascia",
            "front perspective",
            "front",
            "perspective",
        ),
        ("another perspective view thereof", "perspective", "", "perspective"),
        ("Back", "rear", "rear", ""),
        ("an underside view", "bottom", "bottom", ""),
        ("a cross-sectional view taken along line 3-3 of FIG. 2", "section", "", "section"),
        ("an environmental view showing the article in use", "in-use", "", "in-use"),
        ("a rear view of a front panel", "rear", "rear", ""),
    ],
)
def test_normalise_view(description: str, view: str, direction: str, type_: str) -> None:
    assert normalise_view(description) == View(view, direction, type_)


def test_unknown_is_empty() -> None:
    assert normalise_view("") == UNKNOWN
    assert UNKNOWN == View("unknown", "", "")


def test_view_head_stops_at_object() -> None:
    assert view_head("a front perspective view of a shoe showing my new design") == "a front perspective view "
    assert view_head("is a top view thereof").strip() == "a top view"
