"""The scheduled flows prefect.yaml runs: each picks its grant-date window, then hands the DAG what it accepts."""

from __future__ import annotations

import datetime as dt
import sys
import types
from pathlib import Path

import pytest

D = dt.date


@pytest.fixture
def fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """designclip.flows.pipeline replaced by a recorder: what the scheduled flows hand to the DAG."""
    calls: list[dict] = []
    module = types.ModuleType("designclip.flows.pipeline")

    def pipeline_flow(**kwargs):
        calls.append(kwargs)
        return {"stages": "recorded"}

    module.pipeline_flow = pipeline_flow
    monkeypatch.setitem(sys.modules, "designclip.flows.pipeline", module)
    return calls


def _finish_ingest(data_root: Path, weeks: list[dt.date]) -> None:
    from designclip.storage.folder import DataFolder
    from designclip.storage.tables import write_marker

    for week in weeks:
        write_marker(DataFolder(str(data_root)), "ingest", week, {"patents": 1})


def test_yearly_flow_runs_the_previous_year_into_its_own_release(prefect_harness, fake_pipeline, tmp_path,
                                                                  monkeypatch) -> None:
    from designclip.flows.scheduled import yearly_flow

    monkeypatch.setenv("DESIGNCLIP_DATA_ROOT", str(tmp_path / "data"))
    out = yearly_flow(today=D(2025, 1, 2), base_url="http://127.0.0.1:9/mirror", options={"max_downloads": 4})
    assert out["release"] == "2024" and (out["start"], out["end"]) == ("2024-01-01", "2024-12-31")
    assert fake_pipeline == [{"start": D(2024, 1, 1), "end": D(2024, 12, 31), "data_root": str(tmp_path / "data"),
                              "until": "release", "source": "bdss", "base_url": "http://127.0.0.1:9/mirror",
                              "release": "2024", "max_downloads": 4}]
    yearly_flow(data_root=str(tmp_path / "other"), today=D(2026, 1, 2))
    assert fake_pipeline[1]["release"] == "2025" and fake_pipeline[1]["data_root"] == str(tmp_path / "other")


def test_since_last_reads_the_ingest_markers(prefect_harness, fake_pipeline, tmp_path) -> None:
    from designclip.flows.scheduled import weekly_flow, yearly_flow

    data = tmp_path / "data"
    _finish_ingest(data, [D(2024, 12, 24), D(2024, 12, 31)])
    out = weekly_flow(data_root=str(data), today=D(2025, 1, 8))
    assert fake_pipeline[-1]["start"] == D(2025, 1, 1) and fake_pipeline[-1]["end"] == D(2025, 1, 8)
    assert fake_pipeline[-1]["until"] == "caption" and out["release"] == "20250101-20250108"
    yearly_flow(data_root=str(data), mode="since-last", today=D(2025, 1, 2))
    assert (fake_pipeline[-1]["start"], fake_pipeline[-1]["end"]) == (D(2025, 1, 1), D(2025, 1, 2))

    _finish_ingest(data, [D(2025, 1, 7)])
    calls = len(fake_pipeline)
    out = weekly_flow(data_root=str(data), today=D(2025, 1, 7))
    assert out["status"] == "nothing new" and len(fake_pipeline) == calls


def test_the_dag_takes_what_the_scheduled_flows_hand_it() -> None:
    """The recorder above stands in for designclip.flows.pipeline: the real one must accept the same call."""
    import typing

    from designclip.flows.pipeline import pipeline_flow
    from designclip.flows.scheduled import Until
    from designclip.pipeline.dag.stages import STAGES

    assert typing.get_args(Until) == STAGES
    pipeline_flow.validate_parameters({"start": D(2024, 1, 1), "end": D(2024, 12, 31), "data_root": "/d",
                                       "until": "release", "source": "bdss", "base_url": None, "release": "2024",
                                       "max_downloads": 4})


def test_a_bad_mode_is_refused_before_any_stage(prefect_harness, fake_pipeline, tmp_path) -> None:
    from designclip.flows.scheduled import yearly_flow
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError):
        yearly_flow(data_root=str(tmp_path), mode="last-year", today=D(2025, 1, 2))
    assert fake_pipeline == []
