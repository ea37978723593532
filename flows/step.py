"""How the whole DAG runs a stage after the data stages: its flow module declares its `STEP` (call, units, where).

The call runs the stage flow's function inside the DAG's own flow run (`flow.fn`: its tasks are tasks of the DAG,
not of a subflow per stage, which costs ~1 s of Prefect each). The data stages (ingest, render, caption) have no
STEP: they stream per week (flows/weekly.py).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.dag.run_profile import RunProfile
from designclip.storage.folder import DataFolder


@dataclass
class Run:
    """What every stage of one DAG run is called with (built once from the DAG flow's parameters)."""

    start: dt.date
    end: dt.date
    data_root: str
    profile: RunProfile
    release: str
    run: str
    ingest: dict[str, Any]
    release_options: dict[str, Any]
    caption_set: str | None = None
    extra_weeks: tuple[dt.date, ...] = ()  # weeks outside [start, end] whose data stages run too (revised weeks)
    render_workers: int | None = None  # render worker processes (None: one per core)
    folder: DataFolder = field(init=False)

    def __post_init__(self) -> None:
        self.folder = DataFolder(self.data_root)


@dataclass(frozen=True)
class Step:
    """One stage in the DAG: its flow call, (units, already done) of the flow's result, and its output folder."""

    call: Callable[[Run], Any]
    count: Callable[[Any], tuple[int, int]]
    where: Callable[[Run, Any], str]


def step_of(stage: str) -> Step:
    """The `STEP` of `designclip.flows.<stage>` (imported when the DAG reaches it: model stages pull in torch)."""
    return importlib.import_module(f"designclip.flows.{stage}").STEP


def one(result: dict[str, Any]) -> tuple[int, int]:
    """(1, 1 if it was already done) of a one-unit flow's result."""
    return 1, int(bool(result.get("skipped")))
