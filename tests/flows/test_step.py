"""Every stage after the streamed data stages has its flow module's STEP, which is all the DAG flow needs to run it."""

from __future__ import annotations

import datetime as dt

from designclip.flows.step import Run, Step, one, step_of
from designclip.flows.weekly import LANES
from designclip.pipeline.dag.run_profile import default_profile
from designclip.pipeline.dag.stages import DATA_STAGES, STAGES


def test_each_stage_is_streamed_per_week_or_has_a_step_in_its_flow_module(tmp_path):
    assert set(DATA_STAGES) <= set(LANES)
    assert all(isinstance(step_of(stage), Step) for stage in STAGES if stage not in DATA_STAGES)
    run = Run(dt.date(2021, 1, 1), dt.date(2021, 12, 31), str(tmp_path), default_profile(False), "2021", "r", {}, {})
    assert step_of("release").where(run, None).endswith("releases/2021")
    assert step_of("train").where(run, None).endswith("models/r")


def test_unit_count_of_one_unit_results():
    assert one({"skipped": True}) == (1, 1) and one({"skipped": False}) == (1, 0)
