"""Every stage of the registry has its flow module's STEP, which is all the DAG flow needs to run it."""

from __future__ import annotations

import datetime as dt

from designclip.flows.step import Run, Step, one, per_week, step_of
from designclip.pipeline.dag.run_profile import default_profile
from designclip.pipeline.dag.stages import STAGES


def test_each_registered_stage_has_a_step_in_its_flow_module(tmp_path):
    assert all(isinstance(step_of(stage), Step) for stage in STAGES)
    run = Run(dt.date(2021, 1, 1), dt.date(2021, 12, 31), str(tmp_path), default_profile(False), "2021", "r", {}, {})
    assert step_of("ingest").where(run, None) == run.folder.root
    assert step_of("release").where(run, None).endswith("releases/2021")
    assert step_of("caption").where(run, {"caption_set": "metadata-1"}).endswith("captions/px512/metadata-1")


def test_unit_counts_of_per_week_and_one_unit_results():
    rows = [{"status": "done"}, {"status": "skipped (done)"}, {"status": "skipped (done)"}]
    assert per_week(rows) == (3, 2)
    assert one({"skipped": True}) == (1, 1) and one({"skipped": False}) == (1, 0)
