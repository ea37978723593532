"""The conveyor: each lane keeps to its bound, a unit goes on as soon as its step ends, a failed unit stops alone."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import pytest


class Recorder:
    """Start/end times and the most tasks seen at once, per lane."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, int] = defaultdict(int)
        self.most: dict[str, int] = defaultdict(int)
        self.times: dict[tuple[str, int], tuple[float, float]] = {}

    def work(self, lane: str, unit: int, seconds: float) -> int:
        with self.lock:
            self.running[lane] += 1
            self.most[lane] = max(self.most[lane], self.running[lane])
        started = time.monotonic()
        try:
            time.sleep(seconds)
            if lane == "fetch" and unit == 3:
                raise RuntimeError("unit 3 cannot be fetched")
            return unit
        finally:
            with self.lock:
                self.running[lane] -= 1
            self.times[(lane, unit)] = (started, time.monotonic())


RECORDER = Recorder()


@pytest.fixture(scope="module")
def conveyed(prefect_harness) -> dict[str, Any]:
    from designclip.flows.conveyor import Conveyor, Lane
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(name="fetch", task_run_name="fetch-{unit}")
    def fetch(unit: int) -> int:
        return RECORDER.work("fetch", unit, 0.3)

    @task(name="build", task_run_name="build-{unit}")
    def build(unit: int) -> int:
        return RECORDER.work("build", unit, 0.1)

    @flow(name="conveyor-test", task_runner=ThreadPoolTaskRunner(max_workers=8))
    def run() -> dict[str, list[tuple[int, str]]]:
        def after(lane: str, unit: int, future: Any) -> list[tuple[str, int]]:
            future.wait()  # the final state as this process holds it
            return [("build", unit)] if lane == "fetch" and future.state.is_completed() else []

        conveyor = Conveyor([Lane("fetch", 2, lambda u, up: fetch.submit(u, wait_for=up)),
                             Lane("build", 1, lambda u, up: build.submit(u, wait_for=up))], after)
        for unit in range(8):
            conveyor.put("fetch", unit)
        futures = conveyor.run()
        return {lane: [(u, f.state.type.value) for u, f in pairs] for lane, pairs in futures.items()}

    return run()


def test_each_lane_keeps_to_its_bound(conveyed):
    assert RECORDER.most["fetch"] == 2 and RECORDER.most["build"] == 1


def test_a_failed_unit_stops_where_it_failed_and_the_others_go_on(conveyed):
    fetched = dict(conveyed["fetch"])
    assert fetched[3] == "FAILED" and all(state == "COMPLETED" for u, state in fetched.items() if u != 3)
    assert sorted(u for u, _ in conveyed["build"]) == [0, 1, 2, 4, 5, 6, 7]


def test_the_first_unit_is_built_before_the_last_is_fetched(conveyed):
    """Streaming: the second lane starts on unit 0 while the first lane still works through the later units."""
    assert RECORDER.times[("build", 0)][0] < RECORDER.times[("fetch", 7)][0]
