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
    pipeline_flow.validate_parameters({"start": D(2025, 1, 8), "end": D(2025, 1, 15), "data_root": "/d",
                                       "until": "caption", "source": "odp", "base_url": None,
                                       "release": "20250108-20250115", "extra_weeks": [D(2024, 12, 31)]})


def test_a_bad_mode_is_refused_before_any_stage(prefect_harness, fake_pipeline, tmp_path) -> None:
    from designclip.flows.scheduled import yearly_flow
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError):
        yearly_flow(data_root=str(tmp_path), mode="last-year", today=D(2025, 1, 2))
    assert fake_pipeline == []


def _ingested_from(data_root: Path, archives: dict[dt.date, str]) -> None:
    from designclip.storage.folder import DataFolder
    from designclip.storage.tables import write_marker

    for week, name in archives.items():
        write_marker(DataFolder(str(data_root)), "ingest", week, {"patents": 1, "source_archive": name})


@pytest.fixture
def odp_root(tmp_path: Path) -> Path:
    """A loopback ODP tree: weeks 01-05 (republished as _r1 on 01-26), 01-12, 02-09 of 2021."""
    from tests.fixtures.httpmirror import make_weekly_tar

    root = tmp_path / "odp"
    for name in ("I20210105.tar", "I20210105_r1.tar", "I20210112.tar", "I20210209.tar"):
        make_weekly_tar(root, name, {f"{name[:9]}/DESIGN/x.ZIP": b"PK" + name.encode()})
    return root


def test_a_revised_week_before_the_window_goes_to_the_dag_as_an_extra_week(prefect_harness, fake_pipeline, odp_root,
                                                                            tmp_path) -> None:
    from designclip.flows.scheduled import weekly_flow

    from tests.fixtures.httpmirror import serve_mirror

    data = tmp_path / "data"
    _ingested_from(data, {D(2021, 1, 5): "I20210105.tar", D(2021, 1, 12): "I20210112.tar"})
    with serve_mirror(odp_root, today=D(2021, 1, 20)) as mirror:  # _r1 not published yet
        weekly_flow(data_root=str(data), today=D(2021, 2, 10), source="odp", base_url=mirror.base_url)
        assert "extra_weeks" not in fake_pipeline[-1]
        mirror.today = D(2021, 2, 10)
        out = weekly_flow(data_root=str(data), today=D(2021, 2, 10), source="odp", base_url=mirror.base_url)
        call = fake_pipeline[-1]
        assert (call["start"], call["end"], call["until"]) == (D(2021, 1, 13), D(2021, 2, 10), "caption")
        assert call["extra_weeks"] == [D(2021, 1, 5)] and call["release"] == "20210113-20210210"
        assert out["revised"] == [{"week": "2021-01-05", "from": "I20210105.tar", "to": "I20210105_r1.tar"}]
        listed = len(mirror.paths())
        weekly_flow(data_root=str(data), today=D(2021, 2, 10), source="odp", base_url=mirror.base_url,
                    relist_weeks=0)
        assert "extra_weeks" not in fake_pipeline[-1] and len(mirror.paths()) == listed  # off: nothing re-listed
        weekly_flow(data_root=str(data), today=D(2021, 2, 10), source="odp", base_url=mirror.base_url,
                    relist_weeks=1)  # 01-06 .. 01-12: 01-12 is re-listed, 01-05 is not
        assert "extra_weeks" not in fake_pipeline[-1] and len(mirror.paths()) == listed + 1


def test_no_new_week_but_a_revised_one_runs_only_that_week_up_to_caption(prefect_harness, fake_pipeline, odp_root,
                                                                         tmp_path) -> None:
    from designclip.flows.scheduled import yearly_flow

    from tests.fixtures.httpmirror import serve_mirror

    data = tmp_path / "data"
    _ingested_from(data, {D(2021, 1, 5): "I20210105.tar", D(2021, 1, 12): "I20210112.tar",
                          D(2021, 2, 9): "I20210209.tar"})
    with serve_mirror(odp_root, today=D(2021, 2, 9)) as mirror:
        out = yearly_flow(data_root=str(data), mode="since-last", today=D(2021, 2, 9), source="odp",
                          base_url=mirror.base_url)
    assert out["status"] == "done" and out["until"] == "caption"  # a revision alone writes no release
    [call] = fake_pipeline
    assert (call["start"], call["end"], call["until"]) == (D(2021, 1, 5), D(2021, 1, 5), "caption")
    assert "extra_weeks" not in call


def test_a_failed_relisting_warns_and_the_window_still_runs(prefect_harness, fake_pipeline, tmp_path, monkeypatch,
                                                            caplog) -> None:
    import designclip.flows.scheduled as scheduled

    def unreachable(*args):
        raise RuntimeError("listing http://127.0.0.1:9 failed after 5 attempts")

    monkeypatch.setattr(scheduled, "list_weeks", unreachable)
    data = tmp_path / "data"
    _ingested_from(data, {D(2021, 1, 5): "I20210105.tar"})
    out = scheduled.weekly_flow(data_root=str(data), today=D(2021, 1, 20))
    assert out["status"] == "done" and out["revised"] == [] and "extra_weeks" not in fake_pipeline[-1]
    assert "re-listing the 8 weeks before 2021-01-06 failed" in caplog.text
