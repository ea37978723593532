"""The data stages streamed per week: download -> ingest -> render -> caption, each week on as soon as its input exists.

One task per unit inside the DAG's own flow (no subflow per stage), each stage a lane with its own bound: downloads
(`--max-downloads`), ingest (one week parsing at a time), render (two weeks feeding the shared process pool, so it
never drains between weeks) and caption (one shard at a time per captioner: the model is loaded once per GPU and fed
shards as their week is rendered; with several GPUs, llava gets one captioner and one lane slot per GPU).
A week that fails stops where it failed; the others keep flowing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Any

from designclip.flows.caption import caption_markdown, caption_summary
from designclip.flows.conveyor import Conveyor, Lane
from designclip.flows.ingest import ingest_markdown, local_archive
from designclip.flows.render import default_workers, render_markdown
from designclip.flows.step import Run
from designclip.pipeline.caption.captioner import caption_devices, default_backend
from designclip.pipeline.caption.driver import CAPTION, CaptionerSpec, unload_captioners
from designclip.pipeline.common.stage import Scope
from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.class_tables import write_class_tables
from designclip.pipeline.ingest.driver import finished, ingested_weeks
from designclip.pipeline.ingest.sources import download_policy
from designclip.pipeline.render.driver import RenderStageOptions
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.pipeline.render.pool import shutdown_pools
from designclip.storage import layout
from designclip.storage.captions import ShardRef, rendered_shards
from designclip.tasks.caption import caption_shard
from designclip.tasks.ingest import download_week, ingest_week, list_weeks
from designclip.tasks.render import render_week
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture

LANES = ("download", "ingest", "render", "caption")


@dataclass
class StageOutcome:
    """What one data stage did over the range: its flow's result (the printers read it), counts, folder, error."""

    result: Any
    units: int
    skipped: int
    where: str
    error: str | None = None


class WeekTracker:
    """Counts weeks through the last stage of the run (a week's caption is through when all its shards are)."""

    def __init__(self, last: str, total: int, log: Any) -> None:
        self.last, self.total, self.log = last, total, log
        self.through, self.open_shards = 0, Counter[dt.date]()

    def week_through(self, week: dt.date, in_flight: dict[str, int]) -> None:
        self.through += 1
        busy = ", ".join(f"{k} {v}" for k, v in in_flight.items())
        self.log.info("week %s through %s (%d of %d weeks; in flight: %s)", week, self.last, self.through,
                      self.total, busy)


def _final(future: PrefectFuture[Any]) -> Any:
    """The task's final state as this process holds it (`.state` alone re-reads it from the API, without the
    exception of a failed task)."""
    future.wait()
    return future.state


def _failure(future: PrefectFuture[Any], name: str) -> str:
    error = _final(future).result(raise_on_failure=False)
    return str(error) if isinstance(error, BaseException) else f"{name}: {_final(future).message}"


def _done(future: PrefectFuture[Any] | None) -> bool:
    return future is not None and _final(future).is_completed()


class WeeklyStream:
    """One streaming run of the data stages `stages` (a contiguous part of ingest, render, caption) over a Run."""

    def __init__(self, run: Run, stages: tuple[str, ...]) -> None:
        self.run, self.stages, self.log = run, stages, get_run_logger()
        self.folder, profile = run.folder, run.profile
        self.render_options = RenderStageOptions(RenderOptions(size=profile.render_size),
                                                 run.render_workers or default_workers())
        self.spec = CaptionerSpec(profile.caption.backend or default_backend(), profile.caption.model_id,
                                  profile.caption.batch_size, 77, loader_workers=2, profile=profile.size_profile)
        self.devices = caption_devices(self.spec.backend)
        self.free_devices: deque[str | None] = deque(self.devices)
        self.device_of: dict[str, str | None] = {}
        self.max_downloads, self.download_options = download_policy(
            run.ingest.get("source", "bdss"), run.ingest.get("max_downloads"), run.ingest.get("download_limit"))
        self.archives: list[WeeklyArchive] = []
        self.weeks: list[dt.date] = []
        self.tracker = WeekTracker(stages[-1], 0, self.log)

    def _scope_weeks(self, found: list[dt.date]) -> list[dt.date]:
        extra = [w for w in self.run.extra_weeks if w not in found]
        return sorted(found + extra)

    def _archives(self) -> list[WeeklyArchive]:
        ingest = self.run.ingest
        if ingest.get("archives"):
            return [local_archive(a) for a in ingest["archives"]]
        source, base_url = ingest.get("source", "bdss"), ingest.get("base_url")
        listed = list(list_weeks(self.run.start, self.run.end, source, base_url))
        for week in self.run.extra_weeks:
            if not self.run.start <= week <= self.run.end:
                listed.extend(list_weeks(week, week, source, base_url))
        if not listed:
            self.log.warning("no weekly archives between %s and %s at %s", self.run.start, self.run.end,
                             base_url or source)
        return sorted(listed, key=lambda a: a.week)

    def _lanes(self) -> list[Lane]:
        r, ingest = self.run, self.run.ingest
        return [
            Lane("download", self.max_downloads, lambda a, up: download_week.submit(
                a, r.data_root, self.download_options, self.max_downloads, wait_for=up)),
            Lane("ingest", 1, lambda a, up: ingest_week.submit(a, r.data_root, None, ingest.get("keep_raw", "none"),
                                                                wait_for=up)),
            Lane("render", 2 if self.render_options.workers > 1 else 1,
                 lambda w, up: render_week.submit(r.data_root, w, self.render_options, wait_for=up)),
            Lane("caption", len(self.devices), self._caption_on_a_free_device),
        ]

    def _spec_on(self, device: str | None) -> CaptionerSpec:
        return self.spec if device is None else replace(self.spec, device=device)

    def _caption_on_a_free_device(self, ref: ShardRef, upstream: list[PrefectFuture[Any]]) -> PrefectFuture[Any]:
        """The lane has room, so a device is free: the shard goes to it (given back when its task ends)."""
        device = self.free_devices.popleft()
        self.device_of[ref.name] = device
        return caption_shard.submit(self.run.data_root, ref, self._spec_on(device), wait_for=upstream)

    def _after(self, lane: str, unit: Any, future: PrefectFuture[Any]) -> list[tuple[str, Any]]:
        """The next lane of a unit whose task finished well (none after a failure: the week stops there)."""
        if lane == "caption":
            self.free_devices.append(self.device_of.pop(unit.name))
        if not _done(future):
            return []
        week = unit.week if isinstance(unit, WeeklyArchive | ShardRef) else unit
        nxt: list[tuple[str, Any]] = []
        if lane == "download":
            nxt = [("ingest", unit)]
        elif lane == "ingest" and "render" in self.stages:
            nxt = [("render", week)]
        elif lane == "render" and "caption" in self.stages:
            nxt = [("caption", ref) for ref in rendered_shards(self.folder, self.spec.profile, week, week)]
            self.tracker.open_shards[week] = len(nxt)
        elif lane == "caption":
            self.tracker.open_shards[week] -= 1
            if self.tracker.open_shards[week] > 0:
                return []
        if not nxt:
            self.tracker.week_through(week, self.conveyor.in_flight())
        return nxt

    def run_all(self) -> dict[str, StageOutcome]:
        """Every week as far as it goes; one outcome per data stage of the run."""
        first, outcomes = self.stages[0], {}
        self.conveyor = Conveyor(self._lanes(), self._after)
        if first == "ingest":
            write_class_tables(self.folder)
            self.archives = self._archives()
            listed = {a.week for a in self.archives}
            local = bool(self.run.ingest.get("archives"))
            for a in self.archives:
                self.conveyor.put("ingest" if local or finished(self.folder, a) else "download", a)
            earlier = ingested_weeks(self.folder, self.run.start, self.run.end)
            if "render" in self.stages:  # weeks ingested before (e.g. from local archives) are rendered too
                for week in earlier:
                    if week not in listed:
                        self.conveyor.put("render", week)
            self.weeks = sorted(listed | set(earlier))
        elif first == "render":
            self.weeks = self._scope_weeks(ingested_weeks(self.folder, self.run.start, self.run.end))
            if not self.weeks:
                return {"render": self._missing("render", "ingested", "ingest")}
            for week in self.weeks:
                self.conveyor.put("render", week)
        if "caption" in self.stages:
            # the first device's model is loaded here, once (the others at their first shard)
            self.run.caption_set = CAPTION.caption_set(self.folder, self._spec_on(self.devices[0]))
            self.log.info("caption set %s (%s)", self.run.caption_set, self.spec.backend)
            if first == "caption":
                shards = self._caption_scope()
                if not shards:
                    return {"caption": self._missing("caption", "rendered", "render")}
                self.weeks = sorted({s.week for s in shards})
                for ref in shards:
                    self.tracker.open_shards[ref.week] += 1
                    self.conveyor.put("caption", ref)
        self.tracker.total = len(self.weeks)
        self.log.info("streaming %s over %d weeks (at most %s in flight)", " -> ".join(self.stages), len(self.weeks),
                      ", ".join(f"{lane.name} {lane.limit}" for lane in self.conveyor.lanes.values()))
        try:
            futures = self.conveyor.run()
        finally:
            shutdown_pools()
            if "caption" in self.stages:
                unload_captioners()
        for stage in self.stages:
            outcomes[stage] = getattr(self, f"_{stage}_outcome")(futures)
        return outcomes

    def _caption_scope(self) -> list[ShardRef]:
        scope = Scope(self.run.start, self.run.end, release="", run="", size_profile=self.spec.profile)
        shards = CAPTION.units(self.folder, scope, self.spec)
        for week in self.run.extra_weeks:
            if not self.run.start <= week <= self.run.end:
                shards += rendered_shards(self.folder, self.spec.profile, week, week)
        return shards

    def _missing(self, stage: str, state: str, before: str) -> StageOutcome:
        r = self.run
        return StageOutcome([], 0, 0, "", f"no {state} weeks between {r.start} and {r.end} under {r.data_root}: "
                                          f"run `designclip {before} --start {r.start} --end {r.end}` first")

    def _ingest_outcome(self, futures: dict[str, list[tuple[Any, PrefectFuture[Any]]]]) -> StageOutcome:
        downloads = {a.name: f for a, f in futures["download"]}
        parses = {a.name: f for a, f in futures["ingest"]}
        rows, failed = [], []
        for a in self.archives:
            row: dict[str, Any] = {"week": a.week.isoformat(), "archive": a.name}
            parse = parses.get(a.name)
            if _done(parse):
                result = parse.result()
                row |= {k: result.stats[k] for k in ("patents", "figures", "sheets", "errors", "skipped_not_design")}
                row["status"] = "skipped (done)" if result.skipped else "done"
            else:
                row["status"] = "failed"
                culprit = parse if parse is not None else downloads[a.name]
                failed.append(_failure(culprit, a.name))
            rows.append(row)
        create_markdown_artifact(ingest_markdown(rows), key="ingest-summary", description="Ingest by week")
        error = (f"{len(failed)} of {len(rows)} weeks failed (rerun to retry them):\n" + "\n".join(failed)
                 if failed else None)
        return StageOutcome(rows, len(rows), _skipped(rows), self.folder.root, error)

    def _render_outcome(self, futures: dict[str, list[tuple[Any, PrefectFuture[Any]]]]) -> StageOutcome:
        rows, failed = [], []
        for week, future in futures["render"]:
            row: dict[str, Any] = {"week": week.isoformat()}
            if _done(future):
                result = future.result()
                row |= dict(result.stats) | {"skipped": result.skipped}
                row["status"] = "skipped (done)" if result.skipped else "done"
            else:
                row["status"] = "failed"
                failed.append(f"{week}: {_final(future).result(raise_on_failure=False)}")
            rows.append(row)
        create_markdown_artifact(render_markdown(rows), key="render-summary", description="Render by week")
        error = (f"{len(failed)} of {len(rows)} weeks failed (rerun to resume them):\n" + "\n".join(failed)
                 if failed else None)
        return StageOutcome(rows, len(rows), _skipped(rows), self.folder.path("shards", self.spec.profile), error)

    def _caption_outcome(self, futures: dict[str, list[tuple[Any, PrefectFuture[Any]]]]) -> StageOutcome:
        rows = []
        for ref, future in futures["caption"]:
            row: dict[str, Any] = {"shard": ref.name}
            if _done(future):
                result = future.result()
                row |= {**result.stats, "skipped": result.skipped}
                row["status"] = "skipped (done)" if result.skipped else "done"
            else:
                row |= {"status": "failed", "error": str(_final(future).result(raise_on_failure=False))}
            rows.append(row)
        summary = caption_summary(self.run.caption_set or "", rows)
        create_markdown_artifact(caption_markdown(summary), key="caption-summary", description="Captions by shard")
        failed = [f"{r['shard']}: {r['error']}" for r in rows if r["status"] == "failed"]
        error = (f"{len(failed)} of {len(rows)} shards failed (rerun to resume):\n" + "\n".join(failed)
                 if failed else None)
        where = self.folder.path(layout.caption_set_dir(self.spec.profile, self.run.caption_set or ""))
        return StageOutcome(summary, len(rows), summary["skipped"], where, error)


def _skipped(rows: list[dict[str, Any]]) -> int:
    return sum(1 for r in rows if str(r.get("status", "")).startswith("skipped"))


def stream_weeks(run: Run, stages: tuple[str, ...]) -> dict[str, StageOutcome]:
    """Run the data stages `stages` week by week, streamed; one outcome per stage (failures inside, not raised)."""
    return WeeklyStream(run, stages).run_all()
