"""The yearly/weekly schedule: its date windows, prefect.yaml against the flows, `designclip schedule [--apply]`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import types
from pathlib import Path

import pytest
import yaml
from designclip.pipeline.dag.schedule_window import (
    EARLIEST_GRANT,
    is_empty,
    previous_calendar_year,
    release_version_for,
    since_last_finished,
)
from designclip.pipeline.release.options import check_version

ROOT = Path(__file__).resolve().parents[1]
D = dt.date


# --- windows -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("today, expected", [
    (D(2025, 1, 2), (D(2024, 1, 1), D(2024, 12, 31))),   # the deployment's day: 2024 is a leap year
    (D(2025, 1, 1), (D(2024, 1, 1), D(2024, 12, 31))),   # Jan 1 itself already means last year
    (D(2024, 12, 31), (D(2023, 1, 1), D(2023, 12, 31))),  # not yet: the year is not over
    (D(2024, 2, 29), (D(2023, 1, 1), D(2023, 12, 31))),
])
def test_previous_calendar_year(today: dt.date, expected: tuple[dt.date, dt.date]) -> None:
    assert previous_calendar_year(today) == expected


def test_previous_calendar_year_counts_the_leap_day() -> None:
    start, end = previous_calendar_year(D(2025, 1, 2))
    assert (end - start).days + 1 == 366
    start, end = previous_calendar_year(D(2026, 1, 2))
    assert (end - start).days + 1 == 365


@pytest.mark.parametrize("finished, today, expected", [
    ([D(2024, 3, 5), D(2024, 2, 27)], D(2024, 3, 10), (D(2024, 3, 6), D(2024, 3, 10))),  # any order: the last one
    ([D(2024, 2, 27)], D(2024, 3, 4), (D(2024, 2, 28), D(2024, 3, 4))),  # leap year: Feb 28 is a day on its own
    ([D(2028, 2, 29)], D(2028, 3, 7), (D(2028, 3, 1), D(2028, 3, 7))),  # a Tuesday Feb 29 grant week
    ([D(2023, 2, 28)], D(2023, 3, 7), (D(2023, 3, 1), D(2023, 3, 7))),
    ([D(2024, 12, 31)], D(2025, 1, 7), (D(2025, 1, 1), D(2025, 1, 7))),  # across New Year
    ([], D(2025, 1, 2), (EARLIEST_GRANT, D(2025, 1, 2))),  # nothing finished: everything
])
def test_since_last_finished(finished: list[dt.date], today: dt.date, expected: tuple[dt.date, dt.date]) -> None:
    assert since_last_finished(finished, today) == expected
    assert not is_empty(expected)


def test_since_last_finished_is_empty_when_up_to_date() -> None:
    assert is_empty(since_last_finished([D(2025, 1, 7)], D(2025, 1, 7)))
    assert not is_empty(since_last_finished([D(2025, 1, 7)], D(2025, 1, 8)))
    assert since_last_finished([], D(2021, 5, 1), earliest=D(2021, 1, 1)) == (D(2021, 1, 1), D(2021, 5, 1))


def test_release_version_for() -> None:
    assert release_version_for(D(2024, 1, 1), D(2024, 12, 31)) == "2024"
    assert release_version_for(D(2023, 1, 1), D(2023, 12, 31)) == "2023"
    assert release_version_for(D(2024, 1, 1), D(2024, 12, 30)) == "20240101-20241230"  # not a whole year
    assert release_version_for(D(2024, 3, 6), D(2025, 1, 2)) == "20240306-20250102"
    assert release_version_for(D(2023, 1, 1), D(2024, 12, 31)) == "20230101-20241231"  # two years: not "2023"
    with pytest.raises(ValueError, match="empty window"):
        release_version_for(D(2025, 1, 8), D(2025, 1, 7))


def test_every_year_gets_its_own_valid_version() -> None:
    versions = [release_version_for(*previous_calendar_year(D(y, 1, 2))) for y in range(2006, 2040)]
    assert len(set(versions)) == len(versions) and versions[0] == "2005"
    assert all(check_version(v) == v for v in versions)


# --- the flows ------------------------------------------------------------------------------------------------

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


# --- prefect.yaml ---------------------------------------------------------------------------------------------

def _prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_prefect_yaml_entrypoints_and_parameters_fit_the_flows() -> None:
    from prefect.utilities.callables import parameter_schema

    from designclip.cli.schedule import load_flow

    deployments = {d["name"]: d for d in _prefect_yaml()["deployments"]}
    assert set(deployments) == {"designclip-yearly", "designclip-weekly"}
    assert deployments["designclip-yearly"]["entrypoint"] == "flows/scheduled.py:yearly_flow"
    assert deployments["designclip-yearly"]["parameters"]["mode"] == "previous-year"
    for d in deployments.values():
        file, func = d["entrypoint"].split(":")
        assert (ROOT / file).is_file()
        flow = load_flow(d["entrypoint"])
        assert flow.fn.__name__ == func
        schema = parameter_schema(flow.fn)
        assert set(d["parameters"]) <= set(schema.properties)
        flow.validate_parameters(d["parameters"])  # raises on a wrong value, e.g. mode: last-year
        assert d["work_pool"]["name"] == "designclip-pool"
    mode = parameter_schema(load_flow("flows/scheduled.py:yearly_flow").fn).properties["mode"]
    assert mode["enum"] == ["previous-year", "since-last"]


def test_prefect_yaml_schedules_parse_and_fire_when_meant() -> None:
    from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule

    from designclip.cli.schedule import next_runs

    deployments = {d["name"]: d for d in _prefect_yaml()["deployments"]}
    [yearly] = deployments["designclip-yearly"]["schedules"]
    CronSchedule(cron=yearly["cron"], timezone=yearly["timezone"])
    assert yearly["active"] is True
    after = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    runs = next_runs(yearly, after, 2)
    assert [(r.year, r.month, r.day, r.hour) for r in runs] == [(2026, 1, 2, 6), (2027, 1, 2, 6)]
    [weekly] = deployments["designclip-weekly"]["schedules"]
    RRuleSchedule(rrule=weekly["rrule"], timezone=weekly["timezone"])
    assert weekly["active"] is False  # optional: off until someone resumes it
    runs = next_runs(weekly, after, 3)
    assert [r.date() for r in runs] == [D(2025, 3, 4), D(2025, 3, 11), D(2025, 3, 18)]
    assert all(r.weekday() == 1 and r.hour == 18 for r in runs)  # Tuesdays, 18:00 New York time


def test_load_deployments_refuses_what_it_cannot_register(tmp_path) -> None:
    from designclip.cli.schedule import ScheduleConfigError, load_deployments

    bad = tmp_path / "prefect.yaml"
    bad.write_text(yaml.safe_dump({"deployments": [{"name": "x", "entrypoint": "flows/scheduled.py:yearly_flow",
                                                    "schedules": [{"cron": "0 6 2 1 *", "rrule": "FREQ=DAILY"}]}]}))
    with pytest.raises(ScheduleConfigError, match="one cron or one rrule"):
        load_deployments(bad)
    with pytest.raises(ScheduleConfigError, match="no prefect.yaml"):
        load_deployments(tmp_path / "missing.yaml")


# --- designclip schedule --------------------------------------------------------------------------------------

def _schedule(argv: list[str]) -> int:
    from designclip.cli.schedule import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["schedule", *argv])
    return args.func(args)


def test_schedule_prints_without_registering(capsys, monkeypatch) -> None:
    import designclip.cli.schedule as cli_schedule

    monkeypatch.setattr(cli_schedule, "apply", lambda *a, **k: pytest.fail("registered without --apply"))
    assert _schedule([]) == 0
    out = capsys.readouterr().out
    assert "yearly/designclip-yearly" in out and "weekly/designclip-weekly" in out
    assert "cron '0 6 2 1 *' America/New_York, active" in out and "inactive" in out
    assert '{"mode": "previous-year", "until": "release"}' in out and "Nothing registered" in out


def test_schedule_apply_registers_the_deployments(prefect_harness, capsys) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    assert _schedule(["--apply", "--pool", "designclip-test-pool"]) == 0
    assert "work pool designclip-test-pool: created (process)" in capsys.readouterr().out
    assert _schedule(["--apply", "--pool", "designclip-test-pool"]) == 0  # again: updates, same deployments
    assert "work pool designclip-test-pool: exists" in capsys.readouterr().out
    with get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["designclip-yearly", "designclip-weekly"])))
        assert client.read_work_pool("designclip-test-pool").type == "process"
    by_name = {d.name: d for d in found}
    assert set(by_name) == {"designclip-yearly", "designclip-weekly"}
    yearly, weekly = by_name["designclip-yearly"], by_name["designclip-weekly"]
    assert yearly.entrypoint == "designclip.flows.scheduled.yearly_flow"
    assert yearly.work_pool_name == "designclip-test-pool"
    assert yearly.parameters == {"mode": "previous-year", "until": "release"} and not yearly.pull_steps
    [ys] = yearly.schedules
    assert (ys.schedule.cron, ys.schedule.timezone, ys.active) == ("0 6 2 1 *", "America/New_York", True)
    [ws] = weekly.schedules
    assert "FREQ=WEEKLY;BYDAY=TU" in ws.schedule.rrule and ws.active is False
    assert weekly.parameters == {"until": "caption"} and weekly.work_queue_name == "default"
    assert "mode" in yearly.parameter_openapi_schema["properties"]


def test_a_process_worker_runs_a_registered_deployment(prefect_harness, tmp_path) -> None:
    """The module-path entrypoint imports in a worker's own process (an up-to-date data root: nothing new)."""
    import asyncio

    from prefect.deployments import run_deployment
    from prefect.workers.process import ProcessWorker

    from designclip.cli.schedule import apply, load_deployments

    _finish_ingest(tmp_path, [D(2025, 1, 7)])
    apply(load_deployments(), "designclip-worker-pool")
    run = run_deployment("weekly/designclip-weekly", timeout=0,
                         parameters={"data_root": str(tmp_path), "today": "2025-01-07"})

    async def one_pass() -> None:
        async with ProcessWorker(work_pool_name="designclip-worker-pool") as worker:
            await worker.get_and_submit_flow_runs()

    asyncio.run(one_pass())
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run.id)
    assert flow_run.state.is_completed(), flow_run.state
    assert flow_run.parameters == {"until": "caption", "data_root": str(tmp_path), "today": "2025-01-07"}
