"""The render stage for one patent: sheets -> FIG. regions -> normalised PNG views with labels and text."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from designclip.pipeline.common.classes import us_design_class_titles
from designclip.pipeline.common.splits import split_of
from designclip.pipeline.render.label_erase import erase_text, hide_ink
from designclip.pipeline.render.metadata_caption import metadata_caption
from designclip.pipeline.render.near_duplicates import view_hash, view_hash256
from designclip.pipeline.render.segment import SEGMENTER_VERSION, Region, SheetLayout, analyse_sheet, plan_regions
from designclip.pipeline.render.sheet_image import SheetImageError, decode_sheet, ink_box
from designclip.pipeline.render.view_image import crop_box, encode_png, square_view
from designclip.storage.sample_json import normalise_sample_json
from PIL import Image

RENDERER_VERSION = "1"
PATENT_FIELDS = ("patent_id", "title", "claim", "grant_date", "week", "locarno", "locarno_class", "uspc",
                 "uspc_class", "uspc_further", "num_figures", "num_sheets")


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
class ViewSample:
    """One WebDataset sample: a FIG. of a patent."""

    key: str
    png: bytes
    meta: dict[str, Any]

    @property
    def cls(self) -> int:
        return int(self.meta["cls"])

    @property
    def txt(self) -> str:
        return str(self.meta["caption_metadata"])


@dataclass(frozen=True)
class RenderFailure:
    """A view that could not be rendered, with the reason users can act on."""

    patent_id: str
    sheet: int | None
    fig: str | None
    reason: str
    detail: str


@dataclass
class PatentInput:
    """Everything a worker process needs for one patent (plain data, picklable)."""

    patent: dict[str, Any]
    figures: list[dict[str, Any]]
    sheets: list[dict[str, Any]]
    images: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_grant_folder(cls, folder: Path) -> PatentInput:
        """One unpacked grant (its XML and TIFF sheets, e.g. a bundled sample patent), without a data root."""
        from designclip.pipeline.ingest.parse import parse_grant

        grant = parse_grant(next(folder.glob("*.XML")).read_bytes())
        sheets = [dict(s) for s in grant.sheets]
        images = {s["sheet"]: (folder / s["file"]).read_bytes() for s in sheets if (folder / s["file"]).exists()}
        return cls(dict(grant.patent), [dict(f) for f in grant.figures], sheets, images)


@dataclass
class PatentViews:
    patent_id: str
    samples: list[ViewSample]
    failures: list[RenderFailure]
    seconds: float


def class_index() -> dict[str, int]:
    """The published 33-entry map: US design class -> `cls` id."""
    return {name: i for i, name in enumerate(us_design_class_titles())}


def sample_key(patent_id: str, fig: str | None, sheet: int) -> str:
    """'USD0911449_f93', 'USD0913174_f1-1' (webdataset splits keys at the first dot, so none here)."""
    if fig is None:
        return f"{patent_id}_s{sheet:03d}"
    return f"{patent_id}_f{re.sub(r'[^0-9A-Za-z]+', '-', fig)}"


def _drawing_sheets(sheets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sheets D00001.. in order; the D00000 front page repeats one FIG. and is used only when nothing else exists."""
    ordered = sorted(sheets, key=lambda s: s["sheet"])
    drawing = [s for s in ordered if s["sheet"] != 0]
    return drawing or ordered


def _meta(patent: dict[str, Any], figure: dict[str, Any] | None, region: Region, sheet: dict[str, Any],
          size: tuple[int, int], drawing: tuple[int, int, int, int],
          box: tuple[int, int, int, int]) -> dict[str, Any]:
    titles = us_design_class_titles()
    us_class = patent.get("uspc_class")
    view = (figure or {}).get("view")
    class_title = f"{us_class} ({titles[us_class]})" if us_class in titles else None
    grant = patent.get("grant_date")
    return normalise_sample_json({
        "key": sample_key(patent["patent_id"], region.fig, region.sheet),
        "patent_id": patent["patent_id"],
        "fig": region.fig,
        "fig_index": (figure or {}).get("fig_index"),
        "view": view,
        "view_direction": (figure or {}).get("view_direction"),
        "view_type": (figure or {}).get("view_type"),
        "view_description": (figure or {}).get("description"),
        "title": patent.get("title"),
        "claim": patent.get("claim"),
        "grant_date": grant.isoformat() if hasattr(grant, "isoformat") else grant,
        "locarno": patent.get("locarno"),
        "locarno_class": patent.get("locarno_class"),
        "uspc": patent.get("uspc"),
        "uspc_class": us_class,
        "uspc_further": list(patent.get("uspc_further") or []),
        "cls": class_index().get(us_class or "", -1),
        "sheet": region.sheet,
        "sheet_file": sheet.get("file"),
        "orientation": sheet.get("orientation"),
        "sheet_size": list(size),
        "drawing_box": list(drawing),
        "crop_box": list(box),
        "split": split_of(patent["patent_id"]),
        "segmentation": region.method,
        "flagged": region.flag is not None,
        "flag": region.flag,
        "label_box": list(region.label_box) if region.label_box else None,  # sample_json says what "none" is
        "label_text": region.label_text,
        "image_index": (figure or {}).get("image_index"),
        "view_inherited_from": (figure or {}).get("view_inherited_from"),
        "figure_flag": (figure or {}).get("figure_flag"),
        "caption_metadata": metadata_caption(patent.get("title"), view, class_title),
        "renderer_version": RENDERER_VERSION,
        "segmenter_version": SEGMENTER_VERSION,
    })


def render_patent(item: PatentInput, options: RenderOptions | None = None) -> PatentViews:
    """All views of one patent; unreadable sheets become failures, unsure regions whole-sheet flagged samples."""
    options = options or RenderOptions()
    started = time.perf_counter()
    patent_id = item.patent["patent_id"]
    sheets = {s["sheet"]: s for s in _drawing_sheets(item.sheets)}
    figures = sorted(item.figures, key=lambda f: f["fig_index"])
    by_fig = {f["fig"]: f for f in figures}
    failures: list[RenderFailure] = []
    decoded: dict[int, Image.Image | None] = {}

    def gray(sheet_no: int) -> Image.Image | None:
        if sheet_no not in decoded:
            decoded.clear()  # one decoded sheet at a time keeps memory flat on 60-sheet patents
            sheet = sheets[sheet_no]
            data = item.images.get(sheet_no)
            try:
                if data is None:
                    raise SheetImageError(f"no image stored ({sheet.get('image_status') or 'missing'})")
                decoded[sheet_no] = decode_sheet(data, sheet.get("orientation"))
            except SheetImageError as exc:
                decoded[sheet_no] = None
                failures.append(RenderFailure(patent_id, sheet_no, None, "sheet_unreadable",
                                              f"{sheet.get('file')}: {exc}"))
        return decoded[sheet_no]

    def analyse(sheet_no: int) -> SheetLayout:
        image = gray(sheet_no)
        if image is None:
            return SheetLayout(sheet=sheet_no, size=(0, 0))
        return analyse_sheet(image, sheet_no, fig_ids, expect=1 if len(fig_ids) == len(sheets) else None)

    fig_ids = [f["fig"] for f in figures]
    regions = plan_regions(fig_ids, list(sheets), analyse)
    samples = []
    erased: dict[int, Image.Image] = {}
    for region in sorted(regions, key=lambda r: r.sheet):
        image = gray(region.sheet)
        if image is None:
            failures.append(RenderFailure(patent_id, region.sheet, region.fig, "sheet_unreadable",
                                          "the view's sheet could not be decoded"))
            continue
        if region.sheet not in erased:
            erased.clear()
            erased[region.sheet] = erase_text(image, region.erase)
            for fig in region.strays:
                failures.append(RenderFailure(patent_id, region.sheet, fig, "label_not_in_fig_list",
                                              f"{sheets[region.sheet].get('file')} reads FIG. {fig}, which the XML's "
                                              "FIG. list does not have; that drawing is left out"))
        image = erased[region.sheet]
        drawing = region.box or ink_box(image)
        if drawing is None:
            failures.append(RenderFailure(patent_id, region.sheet, region.fig, "sheet_empty",
                                          f"{sheets[region.sheet].get('file')}: no drawing ink on the sheet"))
            continue
        box = crop_box(drawing, image.size, options.margin)
        if region.hide is not None:
            image = hide_ink(image, region.hide, box)
        view = square_view(image, box, options.size)
        png = encode_png(view, options.png_compress_level)
        meta = _meta(item.patent, by_fig.get(region.fig or ""), region, sheets[region.sheet], image.size, drawing,
                     box)
        meta["phash"], meta["phash256"] = view_hash(view), view_hash256(view)
        samples.append(ViewSample(meta["key"], png, meta))
    order = {f["fig"]: i for i, f in enumerate(figures)}
    samples.sort(key=lambda s: (order.get(s.meta["fig"], len(order)), s.meta["sheet"]))
    return PatentViews(patent_id, samples, failures, time.perf_counter() - started)
