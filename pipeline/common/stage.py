"""The contract every stage driver keeps, so the DAG, `status`, `rerun --force` and the summaries treat stages alike.

A driver is Prefect-free: built once from a frozen options dataclass, it lists its units for a scope (weeks, shards,
a release, a run, model tags), says whether a unit is done (its done marker, with a settings fingerprint), runs one
unit with a progress callback and returns a typed `UnitResult`, and says where its outputs are. Prefect tasks wrap
`run` (retries, names, concurrency, artifacts); flows compose them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from designclip.storage.folder import DataFolder

Logger = logging.Logger | logging.LoggerAdapter
"""Where drivers log: a plain logger, or Prefect's run logger when a task runs them."""

Progress = Callable[[int, int | None], None]
"""Called with (units of work done, total or None) as a unit runs: a log line and a UI progress bar upstairs."""


def no_progress(done: int, total: int | None = None) -> None:
    """The progress callback of callers that show none (tests, library use)."""


@dataclass(frozen=True)
class Scope:
    """What one DAG run is about: the grant weeks, the release, the training run and the model tags it touches."""

    start: dt.date
    end: dt.date
    release: str
    run: str
    size_profile: str
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitResult:
    """What one unit of a stage did: its id, whether it was already done, the stats its marker records, and where."""

    stage: str
    unit: str
    skipped: bool
    stats: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""

    @property
    def computed(self) -> bool:
        return not self.skipped


@dataclass(frozen=True)
class StageSummary:
    """A stage's results over a scope: units, how many were already done, where the outputs are."""

    stage: str
    results: tuple[UnitResult, ...]
    where: str

    @property
    def units(self) -> int:
        return len(self.results)

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.results)


OptionsT = TypeVar("OptionsT")
UnitT = TypeVar("UnitT")


class StageDriver(Protocol[OptionsT, UnitT]):
    """One stage: `units` of a scope, `is_done` by marker, `run` one unit -> UnitResult, `outputs` folder."""

    name: str

    def units(self, folder: DataFolder, scope: Scope, options: OptionsT) -> list[UnitT]: ...

    def is_done(self, folder: DataFolder, unit: UnitT, options: OptionsT) -> bool: ...

    def run(self, folder: DataFolder, unit: UnitT, options: OptionsT,
            progress: Progress = no_progress) -> UnitResult: ...

    def outputs(self, folder: DataFolder, scope: Scope, options: OptionsT) -> str: ...
