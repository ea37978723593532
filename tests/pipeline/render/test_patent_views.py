"""Render stage on real fixture sheets: upright landscape sheets, multi-FIG. splits, clean downscales, keys."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from designclip.pipeline.common.gray_sheet import SheetImageError
from designclip.pipeline.render.fig_labels import find_fig_labels, parse_label
from designclip.pipeline.render.patent_views import PatentViews, RenderOptions, render_patent, sample_key
from designclip.pipeline.render.sheet_image import decode_sheet, iou
from PIL import Image, ImageFilter

from tests.conftest import patent_folder
from tests.fixtures.render import fixture_input

SMALL = RenderOptions(size=256)


def orientation_of(prefix: str, sheet_file: str) -> str | None:
    root = ET.parse(next(patent_folder(prefix).glob("*.XML"))).getroot()
    return next(img.get("orientation") for img in root.iter("img") if img.get("file") == sheet_file)


def test_label_parser_reads_ocr_variants():
    assert [parse_label(t) for t in ("FIG. 12", "Fig.3", "FlG. 7", "FIG.I", "FIG 1.1", "-o-o", "FIG.")] == [
        "12", "3", "7", "1", "1.1", None, None]


def test_landscape_sheet_is_turned_upright_so_its_label_reads():
    name = "USD0907293-20210105-D00002.TIF"
    assert orientation_of("USD0907293", name) == "landscape"
    data = (patent_folder("USD0907293") / name).read_bytes()
    stored = Image.open(io.BytesIO(data))
    upright = decode_sheet(data, "landscape")
    assert upright.mode == "L" and upright.size == (stored.height, stored.width)
    labels = find_fig_labels(upright)
    assert [lb.fig for lb in labels] == ["2"]
    x0, y0, x1, y1 = labels[0].box
    assert x1 - x0 > 2 * (y1 - y0)  # the label runs left to right: the sheet is upright, not on its side
    # Upright, the label sits under the drawing, as the USPTO drew it.
    assert y0 > 0.5 * upright.height


def test_undecodable_bytes_raise_a_clear_error():
    with pytest.raises(SheetImageError, match="unreadable sheet image"):
        decode_sheet(b"II*\x00garbage", None)


def test_multi_fig_sheets_are_split_into_their_figs():
    views = render_patent(fixture_input("USD0909824"), SMALL)  # 3 sheets, 7 FIG.s
    assert [s.meta["fig"] for s in views.samples] == [str(i) for i in range(1, 8)]
    assert not views.failures
    by_fig = {s.meta["fig"]: s.meta for s in views.samples}
    assert {by_fig[f]["sheet"] for f in ("4", "5", "6", "7")} == {3}
    assert all(by_fig[f]["segmentation"] == "xycut" and not by_fig[f]["flagged"] for f in ("4", "5", "6", "7"))
    boxes = [tuple(by_fig[f]["crop_box"]) for f in ("4", "5", "6", "7")]
    assert all(iou(a, b) < 0.1 for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # FIG. 4 and 5 sit side by side at the top, FIG. 7 at the bottom of the sheet.
    assert by_fig["4"]["crop_box"][2] <= by_fig["5"]["crop_box"][0] + 20
    assert by_fig["7"]["crop_box"][1] > by_fig["6"]["crop_box"][1]
    assert by_fig["6"]["view"] and by_fig["6"]["view_description"]


def test_one_fig_per_sheet_skips_the_front_page_and_keeps_order():
    item = fixture_input("USD0907292")  # 8 sheets, 8 FIG.s, plus D00000
    views = render_patent(item, SMALL)
    assert len(views.samples) == 8 == len(item.figures)
    assert [s.meta["sheet"] for s in views.samples] == list(range(1, 9))
    assert all(s.meta["segmentation"] == "sheet" for s in views.samples)
    png = Image.open(io.BytesIO(views.samples[0].png))
    assert png.size == (256, 256) and png.mode == "L"


def test_hague_numbers_make_dot_free_unique_keys():
    views = render_patent(fixture_input("USD0913174"), SMALL)
    keys = [s.key for s in views.samples]
    assert keys[0] == "USD0913174_f1-1" and all("." not in k for k in keys) and len(set(keys)) == len(keys)
    assert sample_key("USD1", None, 3) == "USD1_s003"


def _roughness(img: Image.Image) -> float:
    return float(np.asarray(img.filter(ImageFilter.FIND_EDGES), dtype=np.float32).mean())


def test_dithered_screenshot_downscales_to_gray_not_noise():
    item = fixture_input("USD0937859")
    views: PatentViews = render_patent(item, SMALL)
    ours = Image.open(io.BytesIO(views.samples[0].png))
    sheet = decode_sheet(item.images[1], None)
    naive = Image.open(io.BytesIO(item.images[1])).resize(ours.size, Image.Resampling.NEAREST).convert("L")
    assert len(np.unique(np.asarray(ours))) > 16  # real gray levels, not just black and white
    assert _roughness(ours) < 0.5 * _roughness(naive)
    assert sheet.mode == "L"


def test_bad_sheet_is_a_recorded_failure_and_other_views_survive():
    item = fixture_input("USD0929296")  # 2 sheets, 2 FIG.s
    item.images[2] = b"not a tiff"
    views = render_patent(item, SMALL)
    assert [s.meta["fig"] for s in views.samples] == ["1"]
    reasons = {f.reason for f in views.failures}
    assert reasons == {"sheet_unreadable"} and any("D00002" in f.detail for f in views.failures)


def test_patent_without_fig_descriptions_keeps_every_sheet_flagged():
    item = fixture_input("USD0929296")
    item.figures = []
    views = render_patent(item, SMALL)
    assert [s.key for s in views.samples] == ["USD0929296_s001", "USD0929296_s002"]
    assert all(s.meta["flagged"] and s.meta["segmentation"] == "fallback" for s in views.samples)


def test_sample_metadata_carries_labels_and_text():
    meta = render_patent(fixture_input("USD0929296"), SMALL).samples[0].meta
    assert meta["uspc_class"] == "D12" and meta["cls"] == 11 and meta["locarno_class"] == "12"
    assert meta["title"] == "Wheel" and meta["grant_date"] == "2021-08-31"
    assert meta["caption_metadata"].startswith(meta["view"][0].upper())
    assert "wheel" in meta["caption_metadata"] and "D12" in meta["caption_metadata"]
    assert meta["split"] in {"train", "val", "test"}
