"""Forget a stage's finished work (and everything built from it) so the next run redoes it: `rerun --force STAGE`.

Only what is named is removed: the given weeks of the data stages (their tables, shards, captions; never the
downloads under raw/), the given releases, the given training runs and the given model tags' vectors, indexes
and reports. Done markers go first, so an interrupted invalidation leaves work that is "not done", never a
marker whose outputs are gone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from designclip.pipeline.dag.run_profile import STAGES, check_stage
from designclip.storage import layout
from designclip.storage.folder import DataFolder

MARKER_NAMES = ("release.json", "train.json", "card.json", "report.json", "encoder.json")
_WEEK = re.compile(r"^I(\d{8})")


def _downstream(stage: str) -> tuple[str, ...]:
    return STAGES[STAGES.index(check_stage(stage)):]


def _is_marker(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".stats.json") or name in MARKER_NAMES


def _remove_tree(folder: DataFolder, rel: str, removed: list[str]) -> None:
    """Delete a folder under the root: its done markers first, then the rest."""
    if not folder.exists(rel):
        return
    full = folder.path(rel)
    files = folder.fs.find(full) if folder.fs.isdir(full) else [full]
    for path in sorted(files, key=lambda p: not _is_marker(p)):
        if _is_marker(path):
            folder.fs.rm(path)
    folder.fs.rm(full, recursive=True)
    removed.append(rel)


def _remove_file(folder: DataFolder, rel: str, removed: list[str]) -> None:
    if folder.exists(rel):
        folder.remove(rel)
        removed.append(rel)


def _week_ids(folder: DataFolder, rel: str) -> set[dt.date]:
    out = set()
    for path in folder.list(rel):
        m = _WEEK.match(path.rsplit("/", 1)[-1])
        if m:
            out.add(dt.datetime.strptime(m.group(1), "%Y%m%d").date())
    return out


def caption_sets_on_disk(folder: DataFolder, profile: str) -> list[str]:
    """Every caption set folder of a render profile (finished or not)."""
    rels = folder.list(layout.caption_profile_dir(profile))
    return [p.rsplit("/", 1)[-1] for p in rels if folder.fs.isdir(folder.path(p))]


def weeks_on_disk(folder: DataFolder, start: dt.date, end: dt.date, profile: str = "px512") -> list[dt.date]:
    """Weeks in [start, end] that have any output of a data stage (marker, failure record, table, shard, caption)."""
    weeks: set[dt.date] = set()
    probe = dt.date(2000, 1, 4)
    files = [layout.stats_marker("ingest", probe), layout.failure_record("ingest", probe), layout.images_file(probe),
             *(layout.table_file(t, probe) for t in layout.TABLE_NAMES),
             layout.stats_marker(layout.render_stage(profile), probe), layout.shard_dir(profile, probe)]
    for rel in files:
        weeks |= _week_ids(folder, rel.rsplit("/", 1)[0])
    for cset in caption_sets_on_disk(folder, profile):
        weeks |= _week_ids(folder, layout.caption_set_dir(profile, cset))
    return sorted(w for w in weeks if start <= w <= end)


def invalidate(folder: DataFolder, stage: str, weeks: Iterable[dt.date] = (), profile: str = "px512",
               releases: Iterable[str] = (), runs: Iterable[str] = (), models: Iterable[str] = ()) -> list[str]:
    """Remove the outputs of `stage` and every later stage for what is named; returns the removed paths.

    weeks: for ingest, render, caption (ingest keeps raw/ downloads: only parsed tables, images tar, markers go);
    releases: releases/V and every vector, index and report made on it (from the release stage on);
    runs: runs/RUN and models/RUN, and their vectors, indexes and reports on every release (from train on);
    models: model tags whose vectors + indexes (index stage) or reports (evaluate stage) on `releases` go.
    """
    weeks, releases, runs, models = sorted(set(weeks)), list(releases), list(runs), list(models)
    todo = _downstream(stage)
    removed: list[str] = []
    for week in weeks:
        if "ingest" in todo:
            _remove_file(folder, layout.stats_marker("ingest", week), removed)
            _remove_file(folder, layout.failure_record("ingest", week), removed)
            for table in layout.TABLE_NAMES:
                _remove_file(folder, layout.table_file(table, week), removed)
            _remove_file(folder, layout.images_file(week), removed)
        if "render" in todo:
            _remove_file(folder, layout.stats_marker(layout.render_stage(profile), week), removed)
            _remove_tree(folder, layout.shard_dir(profile, week), removed)
            _remove_file(folder, layout.preview_file(profile, week), removed)
        if "caption" in todo:
            for cset in caption_sets_on_disk(folder, profile):
                _remove_tree(folder, layout.caption_dir(profile, cset, week), removed)
                _remove_file(folder, layout.caption_preview(profile, cset, week), removed)
    if "release" in todo:
        for version in releases:
            _remove_file(folder, layout.release_marker(version), removed)
            for rel in layout.release_derived_dirs(version):
                _remove_tree(folder, rel, removed)
            _remove_tree(folder, layout.release_dir(version), removed)
    if "train" in todo:
        for run in runs:
            _remove_file(folder, f"{layout.train_run_dir(run)}/train.json", removed)
            for version in _releases_with_outputs(folder):
                _remove_model_outputs(folder, version, run, ("index", "evaluate"), removed)
            _remove_tree(folder, layout.model_dir(run), removed)
            _remove_tree(folder, layout.train_run_dir(run), removed)
    for version in releases:
        for tag in models:
            _remove_model_outputs(folder, version, tag, todo, removed)
    return removed


def _releases_with_outputs(folder: DataFolder) -> list[str]:
    """Release versions that have vectors, indexes or reports (of any model)."""
    tops = {rel.split("/", 1)[0] for rel in layout.release_derived_dirs("x")}
    return sorted({p.rsplit("/", 1)[-1] for top in tops for p in folder.list(top)})


def _remove_model_outputs(folder: DataFolder, release: str, tag: str, todo: tuple[str, ...],
                          removed: list[str]) -> None:
    """One model's vectors and indexes (index stage) and its report plus the comparisons (evaluate) on a release."""
    if "index" in todo:
        _remove_tree(folder, layout.embed_dir(release, tag), removed)
        _remove_tree(folder, layout.index_model_dir(release, tag), removed)
    if "evaluate" in todo and folder.exists(layout.report_dir(release, tag)):
        _remove_tree(folder, layout.report_dir(release, tag), removed)
        for rel in folder.list(layout.release_derived_dirs(release)[2]):
            if rel.rsplit("/", 1)[-1].startswith("compare-"):
                _remove_file(folder, rel, removed)
