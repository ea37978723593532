"""What each stage forgets for `rerun --force STAGE`: its outputs for the named weeks, releases, runs and models.

Only what is named is removed: the given weeks of the data stages (their tables, shards, captions; never the
downloads under raw/), the given releases, the given training runs and the given model tags' vectors, indexes and
reports. Done markers go first, so an interrupted invalidation leaves work that is "not done", never a marker
whose outputs are gone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.week_outputs import (
    caption_sets_on_disk,
    forget_captions,
    forget_file,
    forget_render,
    forget_tree,
)

_WEEK = re.compile(r"^I(\d{8})")


@dataclass(frozen=True)
class Targets:
    """What a forced stage forgets: weeks (data stages) under a render profile, releases, runs, model tags."""

    weeks: tuple[dt.date, ...] = ()
    profile: str = layout.DEFAULT_PROFILE
    releases: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


def ingest(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """Parsed tables, images tar, marker and failure record of each week (raw/ downloads are kept)."""
    for week in targets.weeks:
        forget_file(folder, layout.stats_marker("ingest", week), removed)
        forget_file(folder, layout.failure_record("ingest", week), removed)
        for table in layout.TABLE_NAMES:
            forget_file(folder, layout.table_file(table, week), removed)
        forget_file(folder, layout.images_file(week), removed)


def render(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """Each week's render marker, shards and preview."""
    for week in targets.weeks:
        forget_render(folder, targets.profile, week, removed)


def caption(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """Each week's captions in every caption set of the profile."""
    for week in targets.weeks:
        forget_captions(folder, targets.profile, week, removed)


def release(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """Each release and every vector, index and report made on it."""
    for version in targets.releases:
        forget_file(folder, layout.release_marker(version), removed)
        for rel in layout.release_derived_dirs(version):
            forget_tree(folder, rel, removed)
        forget_tree(folder, layout.release_dir(version), removed)


def train(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """Each run, its published model, and its vectors, indexes and reports on every release."""
    for run in targets.runs:
        forget_file(folder, f"{layout.train_run_dir(run)}/train.json", removed)
        for version in _releases_with_outputs(folder):
            _model_outputs(folder, version, run, index=True, evaluate=True, removed=removed)
        forget_tree(folder, layout.model_dir(run), removed)
        forget_tree(folder, layout.train_run_dir(run), removed)


def index(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """The named models' vectors and indexes on the named releases."""
    for version in targets.releases:
        for tag in targets.models:
            _model_outputs(folder, version, tag, index=True, evaluate=False, removed=removed)


def evaluate(folder: DataFolder, targets: Targets, removed: list[str]) -> None:
    """The named models' reports (and the comparisons) on the named releases."""
    for version in targets.releases:
        for tag in targets.models:
            _model_outputs(folder, version, tag, index=False, evaluate=True, removed=removed)


def _releases_with_outputs(folder: DataFolder) -> list[str]:
    """Release versions that have vectors, indexes or reports (of any model)."""
    tops = {rel.split("/", 1)[0] for rel in layout.release_derived_dirs("x")}
    return sorted({p.rsplit("/", 1)[-1] for top in tops for p in folder.list(top)})


def _model_outputs(folder: DataFolder, release: str, tag: str, *, index: bool, evaluate: bool,
                   removed: list[str]) -> None:
    """One model's vectors and indexes (index) and its report plus the comparisons (evaluate) on a release."""
    if index:
        forget_tree(folder, layout.embed_dir(release, tag), removed)
        forget_tree(folder, layout.index_model_dir(release, tag), removed)
    if evaluate and folder.exists(layout.report_dir(release, tag)):
        forget_tree(folder, layout.report_dir(release, tag), removed)
        for rel in folder.list(layout.release_derived_dirs(release)[2]):
            if rel.rsplit("/", 1)[-1].startswith("compare-"):
                forget_file(folder, rel, removed)


def _week_ids(folder: DataFolder, rel: str) -> set[dt.date]:
    out = set()
    for path in folder.list(rel):
        m = _WEEK.match(path.rsplit("/", 1)[-1])
        if m:
            out.add(dt.datetime.strptime(m.group(1), "%Y%m%d").date())
    return out


def weeks_on_disk(folder: DataFolder, start: dt.date, end: dt.date,
                  profile: str = layout.DEFAULT_PROFILE) -> list[dt.date]:
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
