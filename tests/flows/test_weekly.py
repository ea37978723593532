"""The data stages stream per week: on a slow mirror a week is rendered and captioned while later weeks still download,
`designclip status` shows it while the run goes on, and the task runs keep their stage-and-unit names."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from designclip.pipeline.ingest.loopback import serve_folder
from designclip.pipeline.ingest.mirror import build_bdss_mirror
from designclip.pipeline.ingest.sample import sample_patents_dir
from designclip.storage.folder import DataFolder
from designclip.storage.status import collect_weeks

START, END = dt.date(2021, 3, 20), dt.date(2021, 5, 10)  # 2021-03-23, 04-06, 04-13 (1 patent each), 05-04 (2)
WEEKS = ["2021-03-23", "2021-04-06", "2021-04-13", "2021-05-04"]
SECONDS_PER_ARCHIVE = 3.0  # longer than starting the render pool (spawned processes) on a busy machine


def snapshots_while(run: Any, folder: DataFolder) -> list[dict[str, tuple[str, str, str]]]:
    """What `designclip status` showed (ingest, render, caption state per week) every 50 ms while `run` ran."""
    seen: list[dict[str, tuple[str, str, str]]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            rows, _ = collect_weeks(folder, "px512", START, END)
            seen.append({r["week"]: (r["ingest"]["state"], r["render"]["state"],
                                     next(iter(r["captions"].values()), {"state": "missing"})["state"])
                         for r in rows})

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run()
    finally:
        stop.set()
        watcher.join(timeout=10)
    return seen


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, prefect_harness) -> dict[str, Any]:
    from designclip.flows.pipeline import pipeline_flow
    from designclip.pipeline.dag.run_profile import default_profile

    mirror = tmp_path_factory.mktemp("mirror")
    archives = build_bdss_mirror(sample_patents_dir(), mirror)
    rate = sorted(p.stat().st_size for p in archives)[len(archives) // 2] / SECONDS_PER_ARCHIVE
    root = tmp_path_factory.mktemp("streamed") / "data"
    out: dict[str, Any] = {}
    with serve_folder(mirror, rate) as url, pytest.MonkeyPatch.context() as patch:
        # two captioner slots, as on a machine with two GPUs (metadata captions ignore the device)
        patch.setattr("designclip.flows.weekly.caption_devices", lambda backend: ["cpu", None])

        def run() -> None:
            out["state"] = pipeline_flow(start=START, end=END, data_root=str(root), until="caption", base_url=url,
                                         max_downloads=1, profile=default_profile(gpu=False), return_state=True)

        out["seen"] = snapshots_while(run, DataFolder(root))
    out["summary"] = out["state"].result()
    return out


def test_every_week_goes_through_every_data_stage_with_two_captioner_slots(streamed):
    stages = streamed["summary"]["stages"]
    assert {s: (v["status"], v["units"]) for s, v in stages.items()} == {
        "ingest": ("done", 4), "render": ("done", 4), "caption": ("done", stages["caption"]["units"])}
    last = {w: states for w, states in streamed["seen"][-1].items() if w in WEEKS}  # status lists every grant week
    assert stages["caption"]["units"] >= 4 and last == dict.fromkeys(WEEKS, ("done",) * 3)


def test_status_shows_a_week_rendered_while_a_later_week_is_not_yet_ingested(streamed):
    """One download at a time on a slow mirror: the first week is rendered before the last has arrived."""
    moments = [s for s in streamed["seen"] if s.get(WEEKS[0], ())[:2] == ("done", "done")
               and s.get(WEEKS[-1], ("missing",))[0] in ("missing", "partial")]
    assert moments, "status never showed week 1 rendered while week 4 was still on its way"


def test_task_runs_are_named_by_stage_and_unit(streamed):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = streamed["state"].state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    names = {r.name for r in runs}
    assert {f"ingest-I{w.replace('-', '')}.tar" for w in WEEKS} <= names
    assert {f"download-I{w.replace('-', '')}.tar" for w in WEEKS} <= names
    assert {f"render-{w}" for w in WEEKS} <= names
    assert {f"caption-I{w.replace('-', '')}/00000" for w in WEEKS} <= names
    by_name = {r.name: r for r in runs}
    first_render, last_download = by_name[f"render-{WEEKS[0]}"], by_name[f"download-I{WEEKS[-1].replace('-', '')}.tar"]
    assert first_render.end_time < last_download.end_time  # streamed: not every download before any render
