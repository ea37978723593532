"""Exactly number-of-figures FIG. rows per patent: unseen list phrasing, GUI image sequences, count mismatches."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from designclip.pipeline.ingest.figure_rows import FigureTable, figure_table
from designclip.pipeline.ingest.mirror import build_weekly_tar
from designclip.pipeline.ingest.parse import parse_grant
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_table

from tests.conftest import SAMPLE, patent_folder

# USD0927435 (Hague, not among the fixtures) as issue 13 quotes it: the list switches from "1.7 : Perspective"
# to "1.8 is an enlarged partial perspective view; and / 1.9 is a perspective view, shown in an environment".
# Written the way the fixture Hague grants (USD0913174, USD0915935) write their lists: a product line, then one
# <p> per reproduction with the number in a <figref>. The view names of 1.2-1.6 are the usual Hague set.
HAGUE_SWITCHING = [
    "1. Speaker",
    '<figref idref="DRAWINGS">1.1 </figref>: Perspective',
    '<figref idref="DRAWINGS">1.2 </figref>: Front',
    '<figref idref="DRAWINGS">1.3 </figref>: Back',
    '<figref idref="DRAWINGS">1.4 </figref>: Left',
    '<figref idref="DRAWINGS">1.5 </figref>: Right',
    '<figref idref="DRAWINGS">1.6 </figref>: Top',
    '<figref idref="DRAWINGS">1.7 </figref>: Perspective',
    '<figref idref="DRAWINGS">1.8 </figref>is an enlarged partial perspective view; and',
    '<figref idref="DRAWINGS">1.9 </figref>is a perspective view, shown in an environment.',
]
# USD0910058 (animated GUI, not among the fixtures) as issue 13 quotes it: "FIG. 2 is a second image thereof;
# ... FIG. 5 is another embodiment of ... showing a first image ...", 9 FIG.s; written like the fixture GUI
# grants USD0913312/USD0913313 (figref-wrapped leads, "; and," before the last, the transition statement).
GUI_SEQUENCE = [
    '<figref idref="DRAWINGS">FIG. 1</figref> is a front view of a display screen or portion thereof with an '
    "animated graphical user interface showing a first image in a sequence;",
    '<figref idref="DRAWINGS">FIG. 2</figref> is a second image thereof;',
    '<figref idref="DRAWINGS">FIG. 3</figref> is a third image thereof;',
    '<figref idref="DRAWINGS">FIG. 4</figref> is a fourth image thereof;',
    '<figref idref="DRAWINGS">FIG. 5</figref> is another embodiment of the display screen or portion thereof with '
    "an animated graphical user interface showing a first image in a sequence;",
    '<figref idref="DRAWINGS">FIG. 6</figref> is a second image thereof;',
    '<figref idref="DRAWINGS">FIG. 7</figref> is another image thereof;',
    '<figref idref="DRAWINGS">FIG. 8</figref> is a fourth image thereof; and,',
    '<figref idref="DRAWINGS">FIG. 9</figref> is a fifth image thereof.',
    "The appearance of the animated graphical user interface sequentially transitions between the images shown in "
    '<figref idref="DRAWINGS">FIGS. 1-4</figref> and <figref idref="DRAWINGS">FIGS. 5-9</figref>. The process or '
    "period in which one image transitions to another image forms no part of the claimed design.",
]


def with_drawing_text(name: str, paragraphs: list[str], num_figures: int) -> bytes:
    """A real fixture grant whose description of drawings and number-of-figures are replaced."""
    xml = next(patent_folder(name).glob("*.XML")).read_bytes()
    body = "\n".join(f'<p id="p-{i:04d}" num="{i:04d}">{p}</p>' for i, p in enumerate(paragraphs, start=1))
    xml = re.sub(rb"<description-of-drawings>.*?</description-of-drawings>",
                 f"<description-of-drawings>\n{body}\n</description-of-drawings>".encode(), xml, flags=re.DOTALL)
    return re.sub(rb"<number-of-figures>\d+</number-of-figures>",
                  f"<number-of-figures>{num_figures}</number-of-figures>".encode(), xml)


def column(rows: list[dict], name: str) -> list:
    return [r[name] for r in rows]


def table(paragraphs: list[str], n: int | None) -> FigureTable:
    return figure_table(paragraphs, n)


# --- every fixture -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(p.name for p in SAMPLE.iterdir()))
def test_every_fixture_has_number_of_figures_rows_all_described(folder: str) -> None:
    g = parse_grant(next((SAMPLE / folder).glob("*.XML")).read_bytes())
    n = g.patent["num_figures"]
    hague = folder.startswith(("USD0913174", "USD0915935"))
    assert column(g.figures, "fig") == [f"1.{i}" if hague else str(i) for i in range(1, n + 1)]
    assert column(g.figures, "fig_index") == list(range(n))
    assert column(g.figures, "figure_flag") == [None] * n
    assert column(g.figures, "view_inherited_from") == [None] * n
    assert "unknown" not in column(g.figures, "view")
    assert not g.figure_check.mismatch


def test_fixture_gui_sequences_number_their_images() -> None:
    """USD0913312: 'with a first image in a sequence' / 'with the second image thereof'; each names its front view."""
    for name in ("USD0913312", "USD0913313"):
        g = parse_grant(next(patent_folder(name).glob("*.XML")).read_bytes())
        assert column(g.figures, "image_index") == [1, 2]
        assert column(g.figures, "view") == ["front", "front"]
        assert column(g.figures, "view_inherited_from") == [None, None]
    spoon = parse_grant(next(patent_folder("USD0909824").glob("*.XML")).read_bytes())
    assert column(spoon.figures, "image_index") == [None] * 7


# --- the two unseen patents of issue 13 ----------------------------------------------------------------------


def test_hague_list_switching_from_colon_to_is() -> None:
    g = parse_grant(with_drawing_text("USD0915935", HAGUE_SWITCHING, 9))
    assert column(g.figures, "fig") == [f"1.{i}" for i in range(1, 10)]
    assert column(g.figures, "view") == [
        "perspective", "front", "rear", "left", "right", "top", "perspective", "detail", "in-use",
    ]
    assert g.figures[7]["description"] == "an enlarged partial perspective view"
    assert g.figures[8]["description"] == "a perspective view, shown in an environment"
    assert column(g.figures, "figure_flag") == [None] * 9
    assert g.patent["drawing_statements"] == ["1. Speaker"]


def test_hague_list_that_still_loses_entries_keeps_the_count() -> None:
    """The old parser's output for USD0927435 (7 rows for 9): now 9 rows, the two undescribed ones flagged."""
    g = parse_grant(with_drawing_text("USD0915935", HAGUE_SWITCHING[:8], 9))
    assert column(g.figures, "fig") == [f"1.{i}" for i in range(1, 10)]
    assert column(g.figures, "view")[7:] == ["unknown", "unknown"]
    assert column(g.figures, "description")[7:] == [None, None]
    flag = "not described in the XML (number-of-figures is 9, the description names 7)"
    assert column(g.figures, "figure_flag") == [None] * 7 + [flag, flag]
    assert g.figure_check.undescribed == ("1.8", "1.9")


def test_animated_gui_images_take_the_view_they_refer_to() -> None:
    g = parse_grant(with_drawing_text("USD0913312", GUI_SEQUENCE, 9))
    assert column(g.figures, "fig") == [str(i) for i in range(1, 10)]
    # "thereof" is FIG. 1's front view; FIG. 5 is "another embodiment of" the design FIG. 1 shows from the front.
    assert column(g.figures, "view") == ["front"] * 9
    assert column(g.figures, "view_inherited_from") == [None] + ["1"] * 8
    # Two sequences: FIG.s 1-4, then FIG.s 5-9 ("another image" after the second counts on: 3).
    assert column(g.figures, "image_index") == [1, 2, 3, 4, 1, 2, 3, 4, 5]
    assert g.figures[1]["description"] == "a second image thereof"
    assert column(g.figures, "figure_flag") == [None] * 9
    assert g.patent["drawing_statements"][0].startswith("The appearance of the animated graphical user interface")


# --- GUI sequences and inherited views, phrasing by phrasing -------------------------------------------------


def test_another_image_numbers_the_fig_it_follows() -> None:
    t = table(["FIG. 1 is a front view of a display screen with an animated graphical user interface;",
               "FIG. 2 is another image thereof; and", "FIG. 3 is another image thereof."], 3)
    assert [r.image_index for r in t.rows] == [1, 2, 3]
    assert [r.view.view for r in t.rows] == ["front"] * 3
    assert [r.view_inherited_from for r in t.rows] == [None, "1", "1"]


def test_frames_and_own_views_are_not_inherited() -> None:
    t = table(["FIG. 1 is a front view of a display screen showing a first frame of an animation;",
               "FIG. 2 is a front view thereof showing a second frame;", "FIG. 3 is a rear view thereof."], 3)
    assert [r.image_index for r in t.rows] == [1, 2, None]
    assert [r.view.view for r in t.rows] == ["front", "front", "rear"]
    assert [r.view_inherited_from for r in t.rows] == [None, None, None]


def test_first_image_without_a_view_stays_unknown() -> None:
    """Nothing to refer to: 'a first image' names no view and points at no FIG.; it is not guessed."""
    t = table(["FIG. 1 is a first image in a sequence of an animated graphical user interface;",
               "FIG. 2 is a second image thereof."], 2)
    assert [r.view.view for r in t.rows] == ["unknown", "unknown"]
    assert [r.view_inherited_from for r in t.rows] == [None, None]
    assert [r.image_index for r in t.rows] == [1, 2]


def test_image_words_outside_an_animated_design_are_no_sequence() -> None:
    """'a first frame member' of a bed, 'another image' of a photographed lamp: no index, nothing inherited."""
    t = table(["FIG. 1 is a perspective view of a first frame member of a bed;",
               "FIG. 2 is a front view of a lamp;", "FIG. 3 is another image thereof."], 3)
    assert [r.image_index for r in t.rows] == [None, None, None]
    assert [r.view.view for r in t.rows] == ["perspective", "front", "unknown"]
    assert t.rows[2].view_inherited_from is None


def test_view_similar_to_a_named_fig() -> None:
    t = table(["FIG. 1 is a front view of a case;", "FIG. 2 is a top plan view thereof;",
               "FIG. 3 is a view similar to FIG. 2 with the lid removed."], 3)
    assert [r.view.view for r in t.rows] == ["front", "top", "top"]
    assert t.rows[2].view_inherited_from == "2"


def test_another_embodiment_takes_the_first_view_of_the_embodiment_before() -> None:
    t = table(["FIG. 1 is a perspective view of a bottle;", "FIG. 2 is a front view thereof;",
               "FIG. 3 is another embodiment thereof;", "FIG. 4 is a front view of the embodiment of FIG. 3."], 4)
    assert [r.view.view for r in t.rows] == ["perspective", "front", "perspective", "front"]
    assert [r.view_inherited_from for r in t.rows] == [None, None, "1", None]


def test_embodiment_with_own_view_is_not_inherited() -> None:
    """USD0934827: 'FIG. 8 is a perspective view of a second embodiment thereof'."""
    t = table(["FIG. 1 is a perspective view of an embodiment thereof;", "FIG. 2 is a first side view of the "
               "embodiment of FIG. 1;", "FIG. 3 is a perspective view of a second embodiment thereof; and,",
               "FIG. 4 is a front view of the second embodiment viewed in FIG. 3."], 4)
    assert [r.view.view for r in t.rows] == ["perspective", "side", "perspective", "front"]
    assert [r.view_inherited_from for r in t.rows] == [None] * 4


# --- number-of-figures mismatches ----------------------------------------------------------------------------


def test_repeated_number_fills_the_gap_it_sits_in() -> None:
    t = table(["FIG. 1 is a front view;", "FIG. 2 is a rear view;", "FIG. 2 is a top view;",
               "FIG. 4 is a bottom view."], 4)
    assert [r.fig for r in t.rows] == ["1", "2", "3", "4"]
    assert [r.view.view for r in t.rows] == ["front", "rear", "top", "bottom"]
    assert t.rows[2].figure_flag == ("described as FIG. 2 (a repeated or out-of-range number); "
                                     "taken as FIG. 3 by its place in the list")
    assert [r.figure_flag for r in t.rows if r.fig != "3"] == [None] * 3
    assert t.check.renumbered == ("3",) and t.check.undescribed == () and t.check.left_out == ()


def test_a_gap_an_aside_describes_is_not_filled_by_a_repeat() -> None:
    t = table(["1.1 : Perspective", "1.2 : Front", "1.2 : Top",
               "The broken lines form no part of the claimed design; reproduction 1.3 is a bottom view thereof."], 3)
    assert [(r.fig, r.view.view, r.figure_flag) for r in t.rows] == [
        ("1.1", "perspective", None), ("1.2", "front", None), ("1.3", "bottom", None),
    ]
    assert not t.check.mismatch


def test_out_of_range_number_fills_the_last_gap() -> None:
    t = table([f"FIG. {i} is a {v} view;" for i, v in ((1, "front"), (2, "rear"), (4, "top"))], 3)
    assert [(r.fig, r.view.view) for r in t.rows] == [("1", "front"), ("2", "rear"), ("3", "top")]
    assert t.rows[2].figure_flag.startswith("described as FIG. 4")


def test_figs_beyond_the_count_are_left_out_and_flagged() -> None:
    t = table(["FIG. 1 is a front view;", "FIG. 2 is a rear view;", "FIG. 3 is a top view;",
               "FIG. 4 is a bottom view."], 3)
    assert [r.fig for r in t.rows] == ["1", "2", "3"]
    flag = "the description also names FIG. 4 beyond number-of-figures 3; left out"
    assert [r.figure_flag for r in t.rows] == [flag] * 3
    assert t.check.left_out == ("4",)


def test_fig_never_described_gets_a_row() -> None:
    t = table(["FIG. 1 is a front view;", "FIG. 2 is a rear view;", "FIG. 4 is a bottom view."], 4)
    assert [(r.fig, r.view.view, r.description) for r in t.rows] == [
        ("1", "front", "a front view"), ("2", "rear", "a rear view"), ("3", "unknown", None),
        ("4", "bottom", "a bottom view"),
    ]
    assert t.rows[2].figure_flag == "not described in the XML (number-of-figures is 4, the description names 3)"


def test_no_description_at_all() -> None:
    t = table(["The broken lines form no part of the claimed design."], 2)
    assert [(r.fig, r.view.view) for r in t.rows] == [("1", "unknown"), ("2", "unknown")]
    assert t.check.undescribed == ("1", "2")
    assert t.statements == ["The broken lines form no part of the claimed design."]


def test_lettered_numbering_is_kept_in_order_and_padded() -> None:
    t = table(["FIG. 1A is a front view;", "FIG. 1B is a rear view;", "FIG. 2 is a bottom view."], 5)
    assert [r.fig for r in t.rows] == ["1A", "1B", "2", "?4", "?5"]
    assert [r.figure_flag is not None for r in t.rows] == [False, False, False, True, True]
    cut = table(["FIG. 1A is a front view;", "FIG. 1B is a rear view;", "FIG. 2 is a bottom view."], 2)
    assert [r.fig for r in cut.rows] == ["1A", "1B"]
    assert cut.check.left_out == ("2",)


@pytest.mark.parametrize("n", [None, 0])
def test_without_a_count_the_description_decides(n: int | None) -> None:
    t = table(["FIG. 1 is a front view;", "FIG. 3 is a rear view."], n)
    assert [r.fig for r in t.rows] == ["1", "3"]
    assert [r.figure_flag for r in t.rows] == [None, None]
    assert not t.check.mismatch


def test_mismatch_is_counted_in_the_week_stats_not_as_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "USD0915935-20210413"
    shutil.copytree(patent_folder("USD0915935"), folder)
    xml = next(folder.glob("*.XML"))
    xml.write_bytes(with_drawing_text("USD0915935", HAGUE_SWITCHING[:8], 9))
    week = dt.date(2021, 4, 13)
    archive = build_weekly_tar(week, [folder, patent_folder("USD0909824")], tmp_path / "I20210413.tar")
    data = DataFolder(tmp_path / "data")
    with WeekWriter(data, week, archive.name) as sink:
        stats = ingest_archive(str(archive), archive.name, week, sink)
    figures = read_table(data, "figures").to_pylist()
    assert stats.documents_in == stats.patents == 2 and stats.errors == 0
    assert read_table(data, "errors").num_rows == 0
    assert (stats.patents_figure_mismatch, stats.figures_undescribed, stats.figures_left_out) == (1, 2, 0)
    assert stats.figures == len(figures) == 9 + 7
    assert stats.figures_unknown_view == 2
    hague = [f for f in figures if f["patent_id"] == "USD0915935"]
    assert [f["figure_flag"] is not None for f in hague] == [False] * 7 + [True, True]
    assert {f["image_index"] for f in figures} == {None}
