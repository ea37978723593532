"""One drawing sheet's share of the render stage, a unit the process pool schedules: decode the sheet once, read its
labels, and draw the views it most likely holds; the patent's placement (in the parent) confirms or redraws them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from designclip.pipeline.common.gray_sheet import SheetImageError
from designclip.pipeline.render.label_erase import erase_text, hide_ink
from designclip.pipeline.render.near_duplicates import view_hash, view_hash256
from designclip.pipeline.render.placement import SheetPlan, place_figs, sheet_regions
from designclip.pipeline.render.segment import Region, SheetLayout, analyse_sheet, sheet_ink
from designclip.pipeline.render.sheet_image import Box, decode_sheet, ink_box
from designclip.pipeline.render.view_image import crop_box, encode_png, square_view
from PIL import Image

# (sheet, fig, reason, detail): a RenderFailure without its patent id
Failure = tuple[int, str | None, str, str]


@dataclass(frozen=True)
class RenderOptions:
    """Settings that change the pixels; they name the output folder so different settings never mix."""

    size: int = 512
    margin: float = 0.03
    png_compress_level: int = 6

    @property
    def profile(self) -> str:
        return f"px{self.size}"


@dataclass(frozen=True)
class SheetJob:
    """One drawing sheet with what its work needs from its patent (plain data, picklable for worker processes)."""

    row: dict[str, Any]  # the sheets table row: sheet, file, orientation, image_status
    data: bytes | None  # the stored TIFF (None when the archive held none)
    figs: tuple[str, ...]  # the patent's FIG. list, in order
    sheets: tuple[int, ...]  # the patent's drawing sheets, in order
    options: RenderOptions

    @property
    def sheet(self) -> int:
        return int(self.row["sheet"])


@dataclass(frozen=True)
class RegionView:
    """One drawn view of a sheet: its region, PNG, hashes and the boxes its metadata records."""

    region: Region  # without its hide mask (drawn already)
    png: bytes
    phash: str
    phash256: str
    size: tuple[int, int]
    drawing: Box
    box: Box


@dataclass(frozen=True)
class SheetViews:
    """The views drawn from a sheet under one placement, and the failures met on the way (in order)."""

    plan: SheetPlan
    views: list[RegionView]
    failures: list[Failure]


@dataclass(frozen=True)
class SheetPass:
    """A sheet's first (usually only) pass: why it could not be decoded, its labels, and its likely views."""

    sheet: int
    unreadable: Failure | None
    layout: SheetLayout  # without its ink masks: the parent places FIG.s from labels alone
    drawn: SheetViews


def _decode(job: SheetJob) -> tuple[Image.Image | None, Failure | None]:
    try:
        if job.data is None:
            raise SheetImageError(f"no image stored ({job.row.get('image_status') or 'missing'})")
        return decode_sheet(job.data, job.row.get("orientation")), None
    except SheetImageError as exc:
        return None, (job.sheet, None, "sheet_unreadable", f"{job.row.get('file')}: {exc}")


def _draw(job: SheetJob, image: Image.Image | None, layout: SheetLayout, plan: SheetPlan) -> SheetViews:
    """Every view of the sheet under `plan`: labels erased, cropped, other FIG.s' ink hidden, squared, encoded."""
    views: list[RegionView] = []
    failures: list[Failure] = []
    erased: Image.Image | None = None
    for region in sheet_regions(job.sheet, plan, layout):
        if image is None:
            failures.append((job.sheet, region.fig, "sheet_unreadable", "the view's sheet could not be decoded"))
            continue
        if erased is None:
            erased = erase_text(image, region.erase)
            failures += [(job.sheet, fig, "label_not_in_fig_list",
                          f"{job.row.get('file')} reads FIG. {fig}, which the XML's FIG. list does not have; "
                          "that drawing is left out") for fig in region.strays]
        drawing = region.box or ink_box(erased)
        if drawing is None:
            failures.append((job.sheet, region.fig, "sheet_empty",
                             f"{job.row.get('file')}: no drawing ink on the sheet"))
            continue
        box = crop_box(drawing, erased.size, job.options.margin)
        shown = erased if region.hide is None else hide_ink(erased, region.hide, box)
        view = square_view(shown, box, job.options.size)
        png = encode_png(view, job.options.png_compress_level)
        views.append(RegionView(replace(region, hide=None), png, view_hash(view), view_hash256(view), shown.size,
                                drawing, box))
    return SheetViews(plan, views, failures)


def sheet_pass(job: SheetJob) -> SheetPass:
    """Decode once, read the labels, and draw the views under the placement this sheet implies on its own.

    That placement (the other sheets taken as unread) is the patent's real one for almost every sheet: one FIG. per
    sheet, or labels read once each. The parent checks it against every sheet's labels and redraws where it differs.
    """
    image, unreadable = _decode(job)
    if image is None:
        layout = SheetLayout(sheet=job.sheet, size=(0, 0))
    else:
        expect = 1 if len(job.figs) == len(job.sheets) else None
        layout = analyse_sheet(image, job.sheet, list(job.figs), expect=expect)
    alone = {s: layout if s == job.sheet else SheetLayout(sheet=s, size=(0, 0)) for s in job.sheets}
    plan = place_figs(job.figs, job.sheets, alone)[job.sheet]
    drawn = _draw(job, image, layout, plan)
    return SheetPass(job.sheet, unreadable, replace(layout, ink=None, fine=None), drawn)


def draw_again(job: SheetJob, layout: SheetLayout, plan: SheetPlan) -> SheetViews:
    """The sheet's views under the patent's real placement (decoded again: a rare second pass, no label reading)."""
    image, _ = _decode(job)
    if image is not None:
        ink, fine = sheet_ink(image, layout.erase_boxes())
        layout = replace(layout, ink=ink, fine=fine)
    return _draw(job, image, layout, plan)
