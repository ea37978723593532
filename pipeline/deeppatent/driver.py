"""The DeepPatent stage driver (Prefect-free): one ingested week -> its listed and training sheets as PNGs, the
rendered views of its listed test/val patents (`views.py`), a marker.

A week is done when its marker (`_stats/deeppatent/{name}/I{date}.json`, written last) was written from the same
lists, date range and render profile, and no views are missing that its render now has. Files already written by a
killed run are kept (they are written whole, atomically). After the weeks, `finish` copies the lists, writes the
training list, the per-view lists, README.md and missing.json from the markers.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from designclip.pipeline.common.gray_sheet import SheetImageError
from designclip.pipeline.common.stage import Progress, Scope, UnitResult, no_progress
from designclip.pipeline.deeppatent.lists import DeepPatentLists, read_lists
from designclip.pipeline.deeppatent.sheets import listed_path, tiff_to_png
from designclip.pipeline.deeppatent.views import needs_views, view_patents, write_week_views
from designclip.pipeline.ingest.driver import ingested, ingested_weeks
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker
from designclip.storage.tables import read_sheet_image, read_week_table

STAGE = "deeppatent"
FORMAT_VERSION = 1
"""Bumped when the written images change (decoding, naming): every week is built again."""
DEEPPATENT_START, DEEPPATENT_END = dt.date(2018, 1, 1), dt.date(2019, 6, 30)
"""DeepPatent's grant range: the weeks whose patents outside the val/test lists make the training split."""


class WeekNotIngested(RuntimeError):
    """The week's tables are needed; the message says which command makes them."""


@dataclass(frozen=True)
class DeepPatentOptions:
    """A rebuild: the folder of DeepPatent's lists, the rebuild's name, and the grant range of its training split."""

    lists_dir: str
    name: str = layout.DEFAULT_DEEPPATENT_NAME
    start: dt.date = DEEPPATENT_START
    end: dt.date = DEEPPATENT_END
    profile: str = layout.DEFAULT_PROFILE
    """The render profile whose views make the per-FIG. variant."""

    def lists(self) -> DeepPatentLists:
        return _read_lists(str(Path(self.lists_dir).resolve()), _mtimes(self.lists_dir))

    def settings(self) -> dict[str, Any]:
        """What a week's marker must match to be skipped: the lists' bytes, the range, the image format."""
        return {"lists_sha256": self.lists().fingerprint(), "start": self.start.isoformat(),
                "end": self.end.isoformat(), "format_version": FORMAT_VERSION, "views_profile": self.profile}

    def in_range(self, week: dt.date) -> bool:
        return self.start <= week <= self.end


def _mtimes(lists_dir: str) -> tuple[float, ...]:
    return tuple(p.stat().st_mtime for p in sorted(Path(lists_dir).glob("*.txt")))


@functools.lru_cache(maxsize=4)
def _read_lists(lists_dir: str, mtimes: tuple[float, ...]) -> DeepPatentLists:
    """Parsed once per process (and again when a list file changes): one week's unit needs them all."""
    return read_lists(lists_dir)


def week_marker(folder: DataFolder, name: str, week: dt.date) -> DoneMarker:
    return DoneMarker(folder, layout.stats_marker(layout.deeppatent_stage(name), week))


def _write_png(folder: DataFolder, rel: str, tiff: bytes) -> int:
    """Write one sheet as PNG unless a whole one is there already (a killed run's); returns its size in bytes."""
    return folder.size(rel) if folder.exists(rel) else _write_new(folder, rel, tiff_to_png(tiff))


def _write_new(folder: DataFolder, rel: str, data: bytes) -> int:
    """Write a file unless a whole one is there already (written atomically); returns its size in bytes (the same
    whether this run wrote it or a killed one did, so a week's marker does not depend on where a run stopped)."""
    if folder.exists(rel):
        return folder.size(rel)
    with folder.atomic_open(rel) as f:
        f.write(data)
    return len(data)


def _done(folder: DataFolder, week: dt.date, options: DeepPatentOptions) -> dict[str, Any] | None:
    """The week's marker when it stands: same settings, and no views missing that the render now has."""
    record = week_marker(folder, options.name, week).done(options.settings())
    return None if record is None or needs_views(record, folder, week) else record


def week_sheets(folder: DataFolder, week: dt.date, options: DeepPatentOptions
                ) -> tuple[dict[str, dict[str, Any]], list[str], list[dict[str, str]]]:
    """The week's sheets to write by listed path, the training sheets among them, and the listed ones not there."""
    lists = options.lists()
    listed, held = lists.sheets_of_week(week), lists.held_out()
    rows = read_week_table(folder, "sheets", week).to_pylist()
    by_path = {listed_path(r["week"] or week, r["patent_id"], r["file"] or ""): r for r in rows}
    train = sorted(p for p, r in by_path.items() if options.in_range(week) and r["patent_id"] not in held)
    missing = [{"path": p, "reason": "not_in_archive"} for p in sorted(listed) if p not in by_path]
    wanted = {p: by_path[p] for p in sorted({*listed, *train}) if p in by_path}
    return wanted, train, missing


class DeepPatentDriver:
    """DeepPatent's images as a `StageDriver` over the ingested weeks of the lists and of the training range."""

    name = STAGE

    def units(self, folder: DataFolder, scope: Scope, options: DeepPatentOptions) -> list[dt.date]:
        """Ingested weeks in the scope that the lists name or that the training range covers."""
        listed = set(options.lists().weeks())
        return [w for w in ingested_weeks(folder, scope.start, scope.end) if w in listed or options.in_range(w)]

    def is_done(self, folder: DataFolder, unit: dt.date, options: DeepPatentOptions) -> bool:
        return _done(folder, unit, options) is not None

    def run(self, folder: DataFolder, unit: dt.date, options: DeepPatentOptions,
            progress: Progress = no_progress) -> UnitResult:
        """Write one week's listed and training sheets, then its marker; a finished week is skipped."""
        week, settings = unit, options.settings()
        marker, where = week_marker(folder, options.name, week), folder.path(layout.deeppatent_dir(options.name))
        record = _done(folder, week, options)
        if record is not None:
            return UnitResult(STAGE, layout.week_id(week), True, record, where)
        if not ingested(folder, week):
            raise WeekNotIngested(f"week {week} is not ingested yet: run `designclip ingest --start {week} "
                                  f"--end {week}`, then this build again")
        started = time.monotonic()
        wanted, train, missing = week_sheets(folder, week, options)
        written = 0
        bad: set[str] = set()
        for i, (path, row) in enumerate(wanted.items(), 1):
            rel = layout.deeppatent_file(options.name, f"images/{path}")
            try:
                written += _write_png(folder, rel, read_sheet_image(folder, row))
            except FileNotFoundError:
                missing.append({"path": path, "reason": f"no_image ({row.get('image_status')})"})
                bad.add(path)
            except SheetImageError as exc:
                missing.append({"path": path, "reason": f"unreadable ({exc})"})
                bad.add(path)
            progress(i, len(wanted))
        listed = options.lists().sheets_of_week(week)
        wanted_views = {s.patent_dir for s in listed.values()} & view_patents(options.lists())
        views = write_week_views(folder, week, wanted_views, options.name, options.profile,
                                 lambda rel, png: _write_new(folder, rel, png))
        listed_missing = [m for m in missing if m["path"] in listed]
        stats = {"week": week.isoformat(), "listed": len(listed), "listed_written": len(listed) - len(listed_missing),
                 "missing": sorted(listed_missing, key=lambda m: m["path"]),
                 "train": [p for p in train if p not in bad], "train_missing": len(set(train) & bad),
                 "images": len(wanted) - len(bad), "bytes": written + views["bytes"], "views": views,
                 "seconds": round(time.monotonic() - started, 3),
                 "finished_at": dt.datetime.now(dt.UTC).isoformat()}
        record = marker.write(stats, settings)
        return UnitResult(STAGE, layout.week_id(week), False, record, where)

    def outputs(self, folder: DataFolder, scope: Scope, options: DeepPatentOptions) -> str:
        return folder.path(layout.deeppatent_dir(options.name))


DEEPPATENT = DeepPatentDriver()


def build_scope(options: DeepPatentOptions) -> Scope:
    """The weeks a rebuild covers: the training range and every week the lists name (one is in 2020)."""
    weeks = options.lists().weeks()
    start, end = min([options.start, *weeks[:1]]), max([options.end, *weeks[-1:]])
    return Scope(start, end, release="", run="", size_profile="")

