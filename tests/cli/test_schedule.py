"""`designclip schedule [--apply]`: prefect.yaml against the flows, its schedules, and the deployments registered."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
D = dt.date


def _finish_ingest(data_root: Path, weeks: list[dt.date]) -> None:
    from designclip.storage.folder import DataFolder
    from designclip.storage.tables import write_marker

    for week in weeks:
        write_marker(DataFolder(str(data_root)), "ingest", week, {"patents": 1})


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


def test_relist_weeks_sets_how_far_back_each_run_looks_for_revised_archives(capsys, monkeypatch) -> None:
    import designclip.cli.schedule as cli_schedule

    registered = []
    monkeypatch.setattr(cli_schedule, "apply", lambda deployments, pool: registered.append(deployments))
    monkeypatch.setattr("prefect.settings.PREFECT_API_URL.value", lambda: "http://127.0.0.1:9/api")
    assert _schedule(["--relist-weeks", "4"]) == 0
    out = capsys.readouterr().out
    assert '{"mode": "previous-year", "relist_weeks": 4, "until": "release"}' in out
    assert '{"relist_weeks": 4, "until": "caption"}' in out
    assert _schedule(["--relist-weeks", "0", "--apply"]) == 0
    capsys.readouterr()
    [deployments] = registered
    assert [d["parameters"]["relist_weeks"] for d in deployments] == [0, 0]
    assert _schedule([]) == 0 and "relist_weeks" not in capsys.readouterr().out  # the flows' default (8) then
    with pytest.raises(cli_schedule.ScheduleConfigError, match="use 0"):
        _schedule(["--relist-weeks", "-1"])
