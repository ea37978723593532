"""FIG. labels on real sheets: read where they are (upright or turned), erased from the views, drawing lines kept."""

from __future__ import annotations

import io

import numpy as np
import pytest
from designclip.pipeline.render.fig_labels import find_fig_labels, parse_label, read_sheet_labels
from designclip.pipeline.render.label_candidates import find_text_candidates
from designclip.pipeline.render.label_erase import erase_text
from designclip.pipeline.render.patent_views import RenderOptions, render_patent
from designclip.pipeline.render.sheet_image import decode_sheet
from PIL import Image, ImageDraw, ImageFilter

from tests.conftest import patent_folder
from tests.fixtures.render import fixture_input


def sheet(prefix: str, number: int, orientation: str | None = None) -> Image.Image:
    folder = patent_folder(prefix)
    return decode_sheet(next(folder.glob(f"*-D{number:05d}.TIF")).read_bytes(), orientation)


def test_label_parser_reads_words_the_sheets_use():
    texts = ["Figure 8", "Fig. 8", "FIG - 6", "FIG.2A", "IG. 3", "FIGURE 4", "163", "16:30", "2.0", "FIG."]
    assert [parse_label(t) for t in texts] == ["8", "8", "6", "2A", "3", "4", None, None, None, None]
    assert parse_label("1.2", hague=True) == "1.2" and parse_label("1.2") is None


def test_a_label_turned_90_degrees_is_read():
    labels = find_fig_labels(sheet("USD0938702", 6))  # "FIG. 6" written bottom-to-top beside the shoe
    assert [(lb.fig, lb.rotation) for lb in labels] == [("6", 90)]
    x0, y0, x1, y1 = labels[0].box
    assert y1 - y0 > 2 * (x1 - x0)


def test_labels_of_a_four_fig_sheet_are_all_read_with_their_places():
    labels = find_fig_labels(sheet("USD0909824", 3))
    assert [lb.fig for lb in labels] == ["4", "5", "6", "7"]  # top to bottom, left to right
    by_fig = {lb.fig: lb.box for lb in labels}
    assert by_fig["4"][2] < by_fig["5"][0] and by_fig["6"][1] < by_fig["7"][1]


def test_label_reading_looks_only_at_a_few_text_lines():
    gray = sheet("USD0911449", 17)
    candidates = find_text_candidates(gray)
    assert 2 <= len(candidates) <= 16
    assert {lb.fig for lb in read_sheet_labels(gray).labels} == {"23", "24"}


def _ink(gray: Image.Image, box: tuple[int, int, int, int]) -> int:
    return int((np.asarray(gray.crop(box)) < 128).sum())


def test_erasing_a_label_that_touches_a_drawing_line_keeps_the_line_whole():
    gray = sheet("USD0907292", 1).copy()
    (label,) = find_fig_labels(gray)
    x0, y0, x1, y1 = label.box
    # A drawing line coming down from above that touches the label's first letter.
    line = (x0 + 4, y0 - 300, x0 + 7, y0 + 6)
    ImageDraw.Draw(gray).rectangle(line, fill=0)
    text = read_sheet_labels(gray)
    assert [lb.fig for lb in text.labels] == ["1"]  # read without the touched letter
    erased = erase_text(gray, [p for lb in text.labels for p in lb.parts] + text.unread)
    assert _ink(erased, (line[0], line[1], line[2] + 1, line[3] + 1)) == _ink(gray, (line[0], line[1], line[2] + 1,
                                                                                     line[3] + 1))
    rest_of_label = (x0 + 50, y0, x1, y1)  # the italic F (~45 px wide) stays, joined to the line
    assert _ink(gray, rest_of_label) > 500 and _ink(erased, rest_of_label) == 0
    # The drawing itself is untouched: only pixels inside the label's box changed.
    changed = np.argwhere(np.asarray(erased) != np.asarray(gray))
    assert changed[:, 1].min() >= x0 - 4 and changed[:, 0].min() >= y0 - 4


@pytest.fixture(scope="module")
def sample_views() -> list[tuple[str, bytes, dict]]:
    from tests.conftest import SAMPLE

    views = []
    for folder in sorted(SAMPLE.iterdir()):
        for s in render_patent(fixture_input(folder.name.split("-")[0]), RenderOptions(size=512)).samples:
            views.append((s.key, s.png, s.meta))
    return views


def test_views_carry_where_their_label_was(sample_views):
    with_label = [m for _, _, m in sample_views if m["label_box"] != [0, 0, 0, 0]]
    assert len(with_label) >= 0.9 * len(sample_views)
    for meta in with_label:
        x0, y0, x1, y1 = meta["label_box"]
        w, h = meta["sheet_size"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and meta["label_text"]


def test_ocr_finds_a_fig_label_in_at_most_2_percent_of_the_sample_views(sample_views):
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()  # the stock engine, detector and all: an independent reader, not the render stage's own
    still_labelled = []
    for key, png, _ in sample_views:
        result, _ = engine(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))
        if any(parse_label(text) or parse_label(text, hague=True) for _, text, _ in result or []):
            still_labelled.append(key)
    assert len(still_labelled) <= 0.02 * len(sample_views), still_labelled


def test_labels_whose_letters_touch_are_read():
    """A bold or tight font draws "FIG" as one blob: the real labels of a four-FIG. sheet thickened until they do."""
    gray = sheet("USD0909824", 3).copy()
    for lb in find_fig_labels(gray):
        x0, y0, x1, y1 = lb.box
        gray.paste(gray.crop((x0 - 6, y0 - 6, x1 + 6, y1 + 6)).filter(ImageFilter.MinFilter(7)), (x0 - 6, y0 - 6))
    first = find_fig_labels(gray)[0]
    widest = max(p[2] - p[0] for p in first.parts)
    assert widest > 1.8 * (first.box[3] - first.box[1])  # "FIG" is now one component
    assert [lb.fig for lb in find_fig_labels(gray)] == ["4", "5", "6", "7"]


def test_an_underlined_label_is_read_when_the_sheet_count_is_unknown():
    """USD0930529 underlines its "FIG - n" labels (crowded lines): read them even when no clean line is a label."""
    item = fixture_input("USD0930529")
    orientation = {s["sheet"]: s["orientation"] for s in item.sheets}
    for number in range(1, 8):
        gray = decode_sheet(item.images[number], orientation[number])
        assert [lb.fig for lb in read_sheet_labels(gray).labels] == [str(number)]
        assert [lb.fig for lb in read_sheet_labels(gray, expect=1).labels] == [str(number)]
