"""`designclip run ... --deeppatent LISTS`: the DeepPatent rebuild as a step of the DAG run, after the data stages.

Two renamed 2018 weeks are ingested and rendered from local archives in the same run, then rebuilt as DeepPatent
(sheets, per-FIG. view lists, missing.json naming the never-ingested week); the same command again skips them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from tests.fixtures.deeppatent import ABSENT_WEEK, LISTS, TEST_WEEK, deeppatent_week_tars


def run_cli(root: Path, tars: list[Path]) -> tuple[int, str]:
    """`designclip --data-root ROOT run ... --deeppatent LISTS` through the real entry point: (exit status, stdout)."""
    from designclip.cli.main import main

    argv = ["--data-root", str(root), "run", "--start", "2018-01-01", "--end", "2019-06-30", "--until", "render",
            "--archive", *map(str, tars), "--deeppatent", str(LISTS)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, prefect_harness) -> dict:
    """The command run twice on the same data root (the second finds every week built)."""
    tmp = tmp_path_factory.mktemp("dag_deeppatent")
    tars = list(deeppatent_week_tars(tmp).values())
    first, second = run_cli(tmp / "data", tars), run_cli(tmp / "data", tars)
    return {"build": tmp / "data" / "deeppatent" / "deeppatent", "first": first, "second": second,
            "data_root": str(tmp / "data")}


def week_task_runs(data_root: str) -> list[tuple[object, str]]:
    """(task run, its flow's name) of the test week's build tasks in flow runs on `data_root` (other tests' runs
    share the Prefect database)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    out = []
    with get_client(sync_client=True) as client:
        for task in client.read_task_runs(task_run_filter=TaskRunFilter(
                name=TaskRunFilterName(any_=[f"deeppatent-{TEST_WEEK}"]))):
            flow_run = client.read_flow_run(task.flow_run_id)
            if flow_run.parameters.get("data_root") == data_root:
                out.append((task, client.read_flow(flow_run.flow_id).name))
    return out


def test_the_run_builds_deeppatent_from_the_weeks_it_ingested_and_rendered(runs) -> None:
    code, out = runs["first"]
    assert code == 0, out
    build = runs["build"]
    sheets = list((build / "images" / f"I{TEST_WEEK:%Y%m%d}" / f"USD0834581-{TEST_WEEK:%Y%m%d}").glob("*.png"))
    assert len(sheets) == 9  # the sample patent has 9 of the 11 sheets the list names
    assert (build / "views" / "lists" / "test_query_view.txt").read_text().strip()  # rendered in the same run
    missing = json.loads((build / "missing.json").read_text())
    assert ABSENT_WEEK.isoformat() in missing["weeks_not_built"]
    assert missing["summary"] in out
    assert "deeppatent    2 computed,    0 already done" in out


def test_the_same_command_again_skips_the_built_weeks(runs) -> None:
    code, out = runs["second"]
    assert code == 0, out
    assert "deeppatent    0 computed,    2 already done" in out and "(2 already done)" in out


def test_the_weeks_are_tasks_of_the_dag_flow_run(runs) -> None:
    tasks = week_task_runs(runs["data_root"])
    assert len(tasks) == 2 and {name for _, name in tasks} == {"designclip-pipeline"}  # one per run, no subflow


def test_a_failed_data_stage_leaves_the_build_not_run_and_the_rerun_hint_keeps_it(tmp_path: Path,
                                                                                  prefect_harness) -> None:
    from designclip.flows.pipeline import PipelineFailed, pipeline_flow

    tars = deeppatent_week_tars(tmp_path)
    cut = tars[TEST_WEEK].read_bytes()
    tars[TEST_WEEK].write_bytes(cut[: len(cut) // 3])  # this week's ingest fails; the other week goes on
    with pytest.raises(PipelineFailed) as failed:
        pipeline_flow(start=dt.date(2018, 1, 1), end=dt.date(2019, 6, 30), data_root=str(tmp_path / "data"),
                      until="ingest", archives=[str(t) for t in tars.values()], deeppatent_lists=str(LISTS),
                      deeppatent_name="dp")
    assert failed.value.summary["stages"]["deeppatent"] == {"status": "not run", "reason": "ingest failed"}
    assert f"--deeppatent {LISTS} --deeppatent-name dp`" in str(failed.value)
    assert not (tmp_path / "data" / "deeppatent" / "dp").exists()


def test_rerun_by_flow_run_id_rebuilds_with_the_recorded_lists(runs) -> None:
    from designclip.cli.run import rerun_flow_run

    task = week_task_runs(runs["data_root"])[0][0]
    name, summary = rerun_flow_run(str(task.flow_run_id))
    assert name == "designclip-pipeline"
    assert summary["stages"]["deeppatent"] | {"where": ""} == {"status": "done", "units": 2, "skipped": 2,
                                                               "recomputed": 0, "where": ""}
