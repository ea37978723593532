"""One case per way a FIG. list is written: the fixtures' phrasings (quoted from their XML) and unseen ones."""

from __future__ import annotations

import pytest
from designclip.pipeline.ingest.figures import describe_figures

# (class, paragraphs, [(FIG., view), ...]); views read by hand from the sentence.
FIXTURE_PHRASINGS = [
    ("thereof", ["FIG. 2 is a top view thereof;"], [("2", "top")]),  # USD0907293
    ("first FIG. names the object",
     ["FIG. 1 is a perspective view of a shaving razor cartridge showing our new design;"],
     [("1", "perspective")]),  # USD0907293
    ("elevation and plan with a direction",
     ["FIG. 4 is a left-side elevation view thereof;", "FIG. 6 is a top plan view thereof;"],
     [("4", "left"), ("6", "top")]),  # USD0913943
    ("several directions, the first wins",
     ["FIG. 1 is a front, bottom, right-side perspective view of a keyboard including a control bar.",
      "FIG. 2 is a perspective top and front view showing our new design for a license plate fastener cap."],
     [("1", "front perspective"), ("2", "top perspective")]),  # USD0919623, USD0913175
    ("no 'view' word",
     ["FIG. 3 is a bottom thereof;", "FIG. 6 is a front thereof; and,",
      "FIG. 2 is a front elevational of the game housing of FIG. 1;"],
     [("3", "bottom"), ("6", "front"), ("2", "front")]),  # USD0909824, USD0928323, USD0911449
    ("no verb", ["FIG. 4 a perspective view thereof."], [("4", "perspective")]),  # USD0928323
    ("no article", ["FIG. 2 is front view of the license plate fastener cap of the present invention."],
     [("2", "front")]),  # USD0913175
    ("ordinal or 'another' view",
     ["FIG. 2 is a second perspective view thereof;", "FIG. 5 is another side view thereof;",
      "FIG. 3 is a second side view of the embodiment of FIG. 1;"],
     [("2", "perspective"), ("5", "side"), ("3", "side")]),  # USD0919622, USD0928144, USD0934827
    ("opposite side",
     ["FIG. 4 is an opposite side rear perspective view thereof; and,", "FIG. 5 is an opposite side view thereof."],
     [("4", "rear perspective"), ("5", "side")]),  # USD0923318
    ("named side",
     ["FIG. 7 is a heel side view of the golf club head of FIG. 1;", "FIG. 5 is a back side view thereof;"],
     [("7", "side"), ("5", "rear")]),  # USD0930095, USD0909824
    ("view word twice", ["FIG. 3 is a top view perspective view thereof;"], [("3", "top perspective")]),  # USD0907292
    ("isometric", ["FIG. 1 is an isometric view of our design for a coupling segment;"],
     [("1", "perspective")]),  # USD0927652
    ("configuration qualifier",
     ["FIG. 2 is a front view thereof in a folded configuration.",
      "FIG. 1 is an open configuration, top perspective view of the game housing component of our design;"],
     [("2", "front"), ("1", "top perspective")]),  # USD0915080, USD0911449
    ("mirror-image remark",
     ["FIG. 4 is a right side view of the design of the coupling segment shown in FIG. 1, the left view being a "
      "mirror image thereof;",
      "FIG. 1 is a front and left perspective view of a vehicle front fascia showing our new design; the mirror "
      "image of the vehicle front fascia is claimed, but not shown;"],
     [("4", "right"), ("1", "front perspective")]),  # USD0927652, USD0930529
    ("the FIGURE",
     ["The FIGURE is a front view of a display screen or portion thereof with a graphical user interface showing "
      "the new design."],
     [("1", "front")]),  # USD0910059
    ("the FIGURE, misspelt",
     ["The FIGURE is a from view of a display screen or portion thereof with a graphical user interface showing "
      "the new design."],
     [("1", "front")]),  # USD0937859
    ("Hague colon list", ["1. Belt buckle", "1.1 : Perspective", "1.3 : Back"],
     [("1.1", "perspective"), ("1.3", "rear")]),  # USD0915935
    ("Hague reference view", ["1.7 : Reference view", "1.8 : Reference view 2"],
     [("1.7", "reference"), ("1.8", "reference")]),  # USD0913174
    ("embodiment", ["FIG. 2 is a top plan view of a fabric with surface pattern according to a second embodiment."],
     [("2", "top")]),  # USD0939223
]

UNSEEN_PHRASINGS = [
    ("Hague 'is'", ["1.8 is an enlarged partial perspective view; and"], [("1.8", "detail")]),
    ("Hague 'are', distributed", ["1.8 and 1.9 are front and rear views thereof;"],
     [("1.8", "front"), ("1.9", "rear")]),
    ("Hague without colon", ["1.2 Front", "1.3 Back"], [("1.2", "front"), ("1.3", "rear")]),
    ("Hague dash", ["1.5 - Top"], [("1.5", "top")]),
    ("Hague 'Reproduction n is'", ["Reproduction 1.4 is a left side view thereof;"], [("1.4", "left")]),
    ("Hague range", ["1.1 to 1.3 are perspective views;"],
     [("1.1", "perspective"), ("1.2", "perspective"), ("1.3", "perspective")]),
    ("FIG. with Hague number", ["FIG. 1.2 is a front view thereof;"], [("1.2", "front")]),
    ("Hague mixed in one list",
     ["1.1 : Perspective", "1.2 is a front view;", "1.3 and 1.4 are left and right side views, respectively;"],
     [("1.1", "perspective"), ("1.2", "front"), ("1.3", "left"), ("1.4", "right")]),
    ("several FIG.s in one paragraph",
     ["FIG. 1 is a front view of a lamp; FIG. 2 is a rear view thereof; and FIG. 3 is a top view thereof."],
     [("1", "front"), ("2", "rear"), ("3", "top")]),
    ("respectively", ["FIGS. 2 and 3 are left and right side views thereof, respectively;"],
     [("2", "left"), ("3", "right")]),
    ("opposite pair without 'respectively'", ["FIGS. 4 and 5 are top and bottom plan views thereof;"],
     [("4", "top"), ("5", "bottom")]),
    ("compound direction stays compound", ["FIGS. 6 and 7 are front and left perspective views thereof;"],
     [("6", "front perspective"), ("7", "front perspective")]),
    ("end view", ["FIG. 5 is an end view thereof;", "FIG. 6 is an opposite end view thereof;",
                  "FIG. 7 is a left end view thereof;"],
     [("5", "end"), ("6", "end"), ("7", "left")]),
    ("upper and lower", ["FIG. 1 is a front upper perspective view of a chair;",
                         "FIG. 2 is a lower perspective view thereof;"],
     [("1", "front perspective"), ("2", "bottom perspective")]),
    ("oblique", ["FIG. 1 is an oblique view of a mug;"], [("1", "perspective")]),
    ("direction named after the view word",
     ["FIG. 2 is an elevational view of the front thereof;", "FIG. 3 is a view from above;",
      "FIG. 4 is a perspective view thereof, viewed from below;", "FIG. 5 is a perspective view of the top cover;"],
     [("2", "front"), ("3", "top"), ("4", "bottom perspective"), ("5", "perspective")]),
    ("misspellings", ["FIG. 2 is a prespective view thereof;", "FIG. 3 is a botton view thereof;"],
     [("2", "perspective"), ("3", "bottom")]),
    ("in use", ["FIG. 7 is a view of the bottle in use;", "FIG. 8 is a reference view showing a state of use."],
     [("7", "in-use"), ("8", "in-use")]),
    ("no view named stays unknown", ["FIG. 3 is a view thereof with the lid open;"], [("3", "unknown")]),
]


@pytest.mark.parametrize(("paragraphs", "expected"), [c[1:] for c in FIXTURE_PHRASINGS],
                         ids=[c[0] for c in FIXTURE_PHRASINGS])
def test_fixture_phrasing(paragraphs: list[str], expected: list[tuple[str, str]]) -> None:
    rows, _ = describe_figures(paragraphs)
    assert [(r.fig, r.view.view) for r in rows] == expected


@pytest.mark.parametrize(("paragraphs", "expected"), [c[1:] for c in UNSEEN_PHRASINGS],
                         ids=[c[0] for c in UNSEEN_PHRASINGS])
def test_unseen_phrasing(paragraphs: list[str], expected: list[tuple[str, str]]) -> None:
    rows, _ = describe_figures(paragraphs)
    assert [(r.fig, r.view.view) for r in rows] == expected


def test_hague_statement_paragraph_refines_the_list() -> None:
    """USD0913174: its list says '1.1 : Perspective'; the statement paragraph 'reproduction 1.1 is a front ...'."""
    rows, statements = describe_figures([
        "1.1 : Perspective", "1.2 : Front", "1.8 : Reference view 2",
        "The broken lines depict portions of display screen for automobile that form no part of the claimed design; "
        "reproduction 1.1 is a front perspective view of the display screen for automobile; reproduction 1.2 is a "
        "front view thereof; reproduction 1.8 is a reference view showing the use state in which the claimed design "
        "has been installed on the back of the seat on an automobile and forms no part of the claimed design; this "
        "design is for a rear seat entertainment display screen for automobile.",
    ])
    assert [(r.fig, r.view.view) for r in rows] == [("1.1", "front perspective"), ("1.2", "front"), ("1.8", "in-use")]
    assert rows[1].description == "Front"  # says no more than the list: the list's words stay
    assert rows[0].description == "a front perspective view of the display screen for automobile"
    assert len(statements) == 1 and statements[0].startswith("The broken lines depict")


def test_statement_mentioning_figs_is_not_a_description() -> None:
    """USD0934827 and USD0913312: FIG. numbers inside statements describe no FIG."""
    rows, statements = describe_figures([
        "First and second side views, a back view, and top and bottom views of the second embodiment viewed in "
        "FIG. 8 are not provided because they are the same as FIGS. 2, 3, 5, 6, and 7 respectively.",
        "The appearance of the animated image on the display screen or portion thereof sequentially transitions "
        "between the images shown in FIGS. 1-2. The process in which, and the period during which, one image "
        "transitions to another image forms no part of the claimed design.",
    ])
    assert rows == [] and len(statements) == 2
