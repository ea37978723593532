"""The stage registry: the one list the DAG, `status`, `rerun --force` and the summaries loop over.

Adding a stage is adding one `Stage` here (plus its driver in `pipeline/<stage>/driver.py`, a thin task and its
flow); nothing else switches over stage names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from designclip.pipeline.dag import forget
from designclip.pipeline.dag.forget import Targets
from designclip.storage import layout
from designclip.storage.folder import DataFolder


class StageError(ValueError):
    """A stage name the DAG does not have; the message lists the valid ones."""


@dataclass(frozen=True)
class Stage:
    """One stage of the DAG: what it makes, whether it works per week, and how its outputs are forgotten."""

    name: str
    makes: str
    per_week: bool
    forget: Callable[[DataFolder, Targets, list[str]], None]


REGISTRY: tuple[Stage, ...] = (
    Stage("ingest", "patents/figures/sheets tables and the images tar of each week", True, forget.ingest),
    Stage("render", "per-FIG. view shards of each week", True, forget.render),
    Stage("caption", "a caption per view of each rendered shard", True, forget.caption),
    Stage("release", "the versioned, split, checksummed release shards", False, forget.release),
    Stage("train", "a DesignCLIP model trained on the release", False, forget.train),
    Stage("index", "the model's vectors of the release and FAISS indexes over them", False, forget.index),
    Stage("evaluate", "the model's evaluation report on the release", False, forget.evaluate),
)
STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY)
DATA_STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY if s.per_week)


def stage(name: str) -> Stage:
    """The registry entry of `name`, else an error naming the stages."""
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise StageError(f"unknown stage {name!r}: use one of {', '.join(STAGES)}")


def check_stage(name: str) -> str:
    """`name` when it is a stage of the DAG, else an error naming them."""
    return stage(name).name


def stages_between(first: str, last: str) -> tuple[str, ...]:
    """The stages from `first` to `last` inclusive, in DAG order."""
    a, b = STAGES.index(check_stage(first)), STAGES.index(check_stage(last))
    if a > b:
        raise StageError(f"--from {first} comes after --until {last}")
    return STAGES[a:b + 1]


def downstream(name: str) -> tuple[Stage, ...]:
    """`name` and every stage after it: what forcing `name` invalidates."""
    return REGISTRY[STAGES.index(check_stage(name)):]


def invalidate(folder: DataFolder, name: str, weeks: Iterable[dt.date] = (), profile: str = layout.DEFAULT_PROFILE,
               releases: Iterable[str] = (), runs: Iterable[str] = (), models: Iterable[str] = ()) -> list[str]:
    """Forget the outputs of stage `name` and every later stage for what is named; returns the removed paths.

    weeks: for ingest, render, caption (raw/ downloads are kept); releases: the release and everything made on
    it; runs: the runs, their models and everything made with them; models: model tags whose vectors + indexes
    (index) or reports (evaluate) on `releases` go.
    """
    targets = Targets(tuple(sorted(set(weeks))), profile, tuple(releases), tuple(runs), tuple(models))
    removed: list[str] = []
    for entry in downstream(name):
        entry.forget(folder, targets, removed)
    return removed
