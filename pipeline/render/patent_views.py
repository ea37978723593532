"""The render stage for one patent: its sheets' views (sheet_views.py) checked against the FIG. placement of the
whole patent and assembled into samples with labels, metadata and text."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from designclip.pipeline.common.classes import us_design_class_titles
from designclip.pipeline.common.splits import split_of
from designclip.pipeline.render.metadata_caption import metadata_caption
from designclip.pipeline.render.placement import SheetPlan, place_figs
from designclip.pipeline.render.segment import SEGMENTER_VERSION, Region, SheetLayout
from designclip.pipeline.render.sheet_views import (
    RenderOptions,
    SheetJob,
    SheetPass,
    SheetViews,
    draw_again,
    sheet_pass,
)
from designclip.storage.sample_json import normalise_sample_json

RENDERER_VERSION = "1"
PATENT_FIELDS = ("patent_id", "title", "claim", "grant_date", "week", "locarno", "locarno_class", "uspc",
                 "uspc_class", "uspc_further", "num_figures", "num_sheets")


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


Redraw = Callable[[list[tuple[SheetJob, SheetLayout, SheetPlan]]], list[SheetViews]]


def sheet_jobs(item: PatentInput, options: RenderOptions) -> list[SheetJob]:
    """The patent's drawing sheets as units of work, in sheet order."""
    sheets = list({s["sheet"]: s for s in _drawing_sheets(item.sheets)}.values())
    figs = tuple(f["fig"] for f in sorted(item.figures, key=lambda f: f["fig_index"]))
    numbers = tuple(s["sheet"] for s in sheets)
    return [SheetJob(s, item.images.get(s["sheet"]), figs, numbers, options) for s in sheets]


def _draw_here(redo: list[tuple[SheetJob, SheetLayout, SheetPlan]]) -> list[SheetViews]:
    return [draw_again(*r) for r in redo]


def assemble(item: PatentInput, jobs: list[SheetJob], passes: list[SheetPass], started: float,
             redraw: Redraw = _draw_here) -> PatentViews:
    """The patent's views from its sheets' passes: FIG.s placed from every sheet's labels, the sheets whose own
    guess was wrong drawn again (by `redraw`), then samples in FIG. order; failures in sheet order."""
    patent_id = item.patent["patent_id"]
    figures = sorted(item.figures, key=lambda f: f["fig_index"])
    by_fig = {f["fig"]: f for f in figures}
    numbers = [job.sheet for job in jobs]
    plans = place_figs([f["fig"] for f in figures], numbers, {p.sheet: p.layout for p in passes})
    redo = [(job, p.layout, plans[job.sheet]) for job, p in zip(jobs, passes, strict=True)
            if p.drawn.plan != plans[job.sheet]]
    drawn = {p.sheet: p.drawn for p in passes}
    drawn |= {job.sheet: views for (job, _, _), views in zip(redo, redraw(redo), strict=True)}
    failures = [RenderFailure(patent_id, *p.unreadable) for p in passes if p.unreadable]
    samples = []
    for job in jobs:
        failures += [RenderFailure(patent_id, *f) for f in drawn[job.sheet].failures]
        for v in drawn[job.sheet].views:
            meta = _meta(item.patent, by_fig.get(v.region.fig or ""), v.region, job.row, v.size, v.drawing, v.box)
            meta["phash"], meta["phash256"] = v.phash, v.phash256
            samples.append(ViewSample(meta["key"], v.png, meta))
    order = {f["fig"]: i for i, f in enumerate(figures)}
    samples.sort(key=lambda s: (order.get(s.meta["fig"], len(order)), s.meta["sheet"]))
    return PatentViews(patent_id, samples, failures, time.perf_counter() - started)


def render_patent(item: PatentInput, options: RenderOptions | None = None) -> PatentViews:
    """All views of one patent in this process; unreadable sheets become failures, unsure regions flagged samples."""
    started = time.perf_counter()
    jobs = sheet_jobs(item, options or RenderOptions())
    return assemble(item, jobs, [sheet_pass(job) for job in jobs], started)
