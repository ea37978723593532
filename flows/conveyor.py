"""Units moving through bounded lanes of Prefect tasks: each unit goes on as soon as its last step finished.

A lane is one stage (download, ingest, render, caption) with its own limit of tasks in flight, so a slow stage
never blocks a fast one and no stage takes more than its share (download slots, CPU workers, GPU processes). A task
is submitted only when its input exists, so no thread ever waits on another task and the pool cannot deadlock;
its upstream future is still passed as `wait_for`, so the Prefect UI draws each unit's chain.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prefect.futures import PrefectFuture

Submit = Callable[[Any, list[PrefectFuture[Any]]], PrefectFuture[Any]]
"""Starts a lane's task for a unit (given the unit's upstream futures to wait for) and returns its future."""
Next = Callable[[str, Any, PrefectFuture[Any]], Iterable[tuple[str, Any]]]
"""After a lane's task for a unit ended: the (lane, unit) pairs to queue next (none when it failed)."""


@dataclass
class Lane:
    """One stage's queue: units waiting, tasks in flight (at most `limit`), the task that starts one."""

    name: str
    limit: int
    submit: Submit
    waiting: deque[tuple[Any, list[PrefectFuture[Any]]]] = field(default_factory=deque)
    in_flight: int = 0


class Conveyor:
    """Runs units through lanes (in the order they were queued per lane) until every lane is empty."""

    def __init__(self, lanes: Iterable[Lane], after: Next) -> None:
        self.lanes = {lane.name: lane for lane in lanes}
        self.after = after
        self.finished: queue.SimpleQueue[tuple[str, Any, PrefectFuture[Any]]] = queue.SimpleQueue()
        self.futures: dict[str, list[tuple[Any, PrefectFuture[Any]]]] = {name: [] for name in self.lanes}

    def put(self, lane: str, unit: Any, upstream: list[PrefectFuture[Any]] | None = None) -> None:
        """Queue `unit` at `lane`; it starts when the lane has room."""
        self.lanes[lane].waiting.append((unit, upstream or []))

    def in_flight(self) -> dict[str, int]:
        return {name: lane.in_flight for name, lane in self.lanes.items()}

    def _start_what_fits(self) -> None:
        for lane in reversed(self.lanes.values()):  # later stages first: finish weeks before starting new ones
            while lane.waiting and lane.in_flight < lane.limit:
                unit, upstream = lane.waiting.popleft()
                future = lane.submit(unit, upstream)
                lane.in_flight += 1
                self.futures[lane.name].append((unit, future))
                future.add_done_callback(lambda f, name=lane.name, u=unit: self.finished.put((name, u, f)))

    def run(self) -> dict[str, list[tuple[Any, PrefectFuture[Any]]]]:
        """Move every queued unit as far as it goes; returns each lane's (unit, future) pairs in start order."""
        self._start_what_fits()
        while any(lane.in_flight for lane in self.lanes.values()):
            name, unit, future = self.finished.get()
            self.lanes[name].in_flight -= 1
            for lane, next_unit in self.after(name, unit, future):
                self.put(lane, next_unit, [future])
            self._start_what_fits()
        return self.futures
