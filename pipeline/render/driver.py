"""The render stage driver (Prefect-free): one ingested week -> per-FIG. views in WebDataset shards, then its marker.

Finished shards are kept (a rerun resumes after them); a week is done when its marker was written with the same
settings (pixels, shard limits, segmenter version), so other settings render it again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from designclip.pipeline.common.contact_sheet import Thumb, contact_sheet, thumbnail
from designclip.pipeline.common.stage import Progress, Scope, UnitResult, no_progress
from designclip.pipeline.ingest.driver import ingested, ingested_weeks
from designclip.pipeline.render.patent_views import PATENT_FIELDS, PatentInput, PatentViews, RenderOptions
from designclip.pipeline.render.pool import rendered
from designclip.pipeline.render.segment import SEGMENTER_VERSION
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker
from designclip.storage.release import iter_shard_samples
from designclip.storage.shards import WeekShardWriter, sample_members
from designclip.storage.tables import read_sheet_image, read_week_table

STAGE = "render"
PREVIEW_VIEWS = 64


class WeekNotIngested(RuntimeError):
    """Rendering needs the week's tables; the message says which command makes them."""


@dataclass(frozen=True)
class RenderStageOptions:
    """A render run: the pixel settings (they name the profile), worker processes, and the shard limits."""

    pixels: RenderOptions = field(default_factory=RenderOptions)
    workers: int = 1
    max_samples: int = layout.DEFAULT_SHARD_SAMPLES
    max_bytes: int = layout.DEFAULT_SHARD_BYTES

    @property
    def profile(self) -> str:
        return self.pixels.profile

    def settings(self) -> dict[str, Any]:
        """What the week's marker records: everything that changes the shards (not the worker count)."""
        return asdict(self.pixels) | {"max_samples": self.max_samples, "max_bytes": self.max_bytes,
                                      "segmenter_version": SEGMENTER_VERSION}


def week_marker(folder: DataFolder, profile: str, week: dt.date) -> DoneMarker:
    return DoneMarker(folder, layout.stats_marker(layout.render_stage(profile), week))


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["patent_id"], []).append(r)
    return out


def week_patents(folder: DataFolder, week: dt.date) -> list[dict[str, Any]]:
    """The week's patent rows (the fields a view needs), in id order: the order of the shards."""
    return sorted(read_week_table(folder, "patents", week, list(PATENT_FIELDS)).to_pylist(),
                  key=lambda p: p["patent_id"])


def week_inputs(folder: DataFolder, week: dt.date, patents: list[dict[str, Any]],
                skip: set[str]) -> Iterator[PatentInput]:
    """Each patent with its figures, sheets and TIFF bytes (one patent's images in memory at a time)."""
    figures = _group(read_week_table(folder, "figures", week).to_pylist())
    sheets = _group(read_week_table(folder, "sheets", week).to_pylist())
    for patent in patents:
        pid = patent["patent_id"]
        if pid in skip:
            continue
        rows = sheets.get(pid, [])
        images = {s["sheet"]: read_sheet_image(folder, s) for s in rows if s.get("image_path")}
        yield PatentInput(patent, figures.get(pid, []), rows, images)


def once_per_sheet(failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An unreadable sheet is one failure (its reason, and the FIG.s it held), not one more per view on it."""
    out: list[dict[str, Any]] = []
    sheets: dict[tuple[str, Any], dict[str, Any]] = {}
    for f in failures:
        where = (f["patent_id"], f["sheet"])
        if f["reason"] != "sheet_unreadable" or where not in sheets:
            out.append(dict(f))
            if f["reason"] == "sheet_unreadable":
                sheets[where] = out[-1]
            continue
        first = sheets[where]
        if f.get("fig") is not None:
            first["detail"] += f"; FIG. {f['fig']} not drawn"
    return out


def _to_shard(views: PatentViews) -> tuple[list[tuple[str, list[tuple[str, bytes]], dict[str, Any]]], list[dict]]:
    samples = []
    for s in views.samples:
        row = {k: s.meta.get(k) for k in ("patent_id", "fig", "view", "sheet", "cls", "split", "segmentation",
                                          "flagged", "flag", "phash", "phash256")} | {"png_bytes": len(s.png)}
        samples.append((s.key, sample_members(s.key, s.png, s.meta, s.txt, s.cls), row))
    return samples, once_per_sheet([asdict(f) for f in views.failures])


def record_failure(folder: DataFolder, profile: str, week: dt.date, exc: BaseException) -> None:
    """The week's last render failure, for `designclip status` (one file per week: a retry replaces it)."""
    with contextlib.suppress(Exception):  # never hide the failure itself (e.g. on a full disk)
        folder.write_json(layout.failure_record(layout.render_stage(profile), week),
                          {"week": week.isoformat(), "stage": STAGE, "profile": profile,
                           "error": f"{type(exc).__name__}: {exc}", "at": dt.datetime.now(dt.UTC).isoformat()})


def _preview(folder: DataFolder, profile: str, week: dt.date, thumbs: list[Thumb], samples: int) -> None:
    title = f"{layout.week_id(week)}: first {len(thumbs)} of {samples} views"
    with folder.atomic_open(layout.preview_file(profile, week)) as f:
        f.write(contact_sheet(thumbs, title=title))


def rebuild_preview(folder: DataFolder, profile: str, week: dt.date, record: dict[str, Any]) -> None:
    """A finished week's contact sheet made again from its shards (it was deleted, or lost to a crash)."""
    thumbs: list[Thumb] = []
    for rel in record.get("shards", []):
        for sample in iter_shard_samples(folder, profile, week, rel):
            png = next(d for n, d in sample.members if n.endswith(".png"))
            thumbs.append(thumbnail(png, sample.key, bool(sample.meta.get("flagged"))))
            if len(thumbs) >= PREVIEW_VIEWS:
                break
        if len(thumbs) >= PREVIEW_VIEWS:
            break
    _preview(folder, profile, week, thumbs, int(record.get("samples", 0)))


def _week_stats(week: dt.date, profile: str, shards: list[dict[str, Any]], started: dt.datetime) -> dict[str, Any]:
    """The week's marker record (without its settings): totals over its shards."""
    return {
        "week": week.isoformat(),
        "profile": profile,
        "shards": [s["shard"] for s in shards],
        "patents": sum(len(s["patents"]) for s in shards),
        "samples": sum(s["samples"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "flagged": sum(s["flagged"] for s in shards),
        "failures": sum(s["failures"] for s in shards),
        "failures_by_reason": dict(sum((Counter(s["failures_by_reason"]) for s in shards), Counter())),
        "segmentation": dict(sum((Counter(s["segmentation"]) for s in shards), Counter())),
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    }


class RenderDriver:
    """Render as a `StageDriver` over ingested weeks."""

    name = STAGE

    def units(self, folder: DataFolder, scope: Scope, options: RenderStageOptions) -> list[dt.date]:
        return ingested_weeks(folder, scope.start, scope.end)

    def is_done(self, folder: DataFolder, unit: dt.date, options: RenderStageOptions) -> bool:
        return week_marker(folder, options.profile, unit).done(options.settings()) is not None

    def run(self, folder: DataFolder, unit: dt.date, options: RenderStageOptions = RenderStageOptions(),
            progress: Progress = no_progress) -> UnitResult:
        """Render one ingested week into shards; finished shards are kept, a finished week is skipped."""
        week, profile, settings = unit, options.profile, options.settings()
        marker, where = week_marker(folder, profile, week), folder.path(layout.shard_dir(profile, week))
        record = marker.done(settings)
        if record is not None:
            if not folder.exists(layout.preview_file(profile, week)):
                rebuild_preview(folder, profile, week, record)
            return UnitResult(STAGE, layout.week_id(week), True, record, where)
        try:
            record = self._render(folder, week, options, progress)
        except Exception as exc:
            record_failure(folder, profile, week, exc)
            raise
        folder.remove(layout.failure_record(layout.render_stage(profile), week))
        return UnitResult(STAGE, layout.week_id(week), False, record, where)

    def _render(self, folder: DataFolder, week: dt.date, options: RenderStageOptions, progress: Progress
                ) -> dict[str, Any]:
        profile, settings = options.profile, options.settings()
        if not ingested(folder, week):
            raise WeekNotIngested(f"week {week} is not ingested yet: "
                                  f"run `designclip ingest --start {week} --end {week}`")
        for rel in (layout.preview_file(profile, week), layout.stats_marker(layout.render_stage(profile), week)):
            folder.remove_temporaries_of(rel)  # what a killed run of this week left half-written
        started = dt.datetime.now(dt.UTC)
        writer = WeekShardWriter(folder, profile, week, options.max_samples, options.max_bytes, settings)
        patents = week_patents(folder, week)
        done = len(writer.done_patents)
        thumbs: list[Thumb] = []
        try:
            for views in rendered(week_inputs(folder, week, patents, writer.done_patents), options.pixels,
                                  options.workers):
                samples, failures = _to_shard(views)
                writer.add_patent(views.patent_id, samples, failures)
                keep = views.samples[: max(0, PREVIEW_VIEWS - len(thumbs))]
                thumbs.extend(thumbnail(s.png, s.key, s.meta["flagged"]) for s in keep)
                done += 1
                progress(done, len(patents))
            shards = writer.close()
        except BaseException:
            writer.abort()
            raise
        stats = _week_stats(week, profile, shards, started)
        _preview(folder, profile, week, thumbs, stats["samples"])
        return week_marker(folder, profile, week).write(stats, settings)

    def outputs(self, folder: DataFolder, scope: Scope, options: RenderStageOptions) -> str:
        """Every week's shards of the profile: `shards/px512/`."""
        return folder.path(layout.shard_dir(options.profile, scope.start).rpartition("/")[0])


RENDER = RenderDriver()
