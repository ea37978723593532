"""One sample week end to end (ingest, render, caption, release) against raw parse + raw render, same run.

The week with the most bundled sample patents is served from a local BDSS mirror (pipeline.ingest.mirror); its
archive is downloaded into each data root before the clock starts (the download is timed and printed,
never counted). Each stage runs twice per repetition on a fresh data root: as the Prefect flow
(embedded server, like `designclip demo`) and as the plain stage functions the flow's tasks wrap
(tasks/*.py), so the table shows Prefect's share. Baselines, same run, same week: raw
`lxml.etree.fromstring` over the week's grant XMLs (benchmarks/parse.py) plus the raw Pillow loop over
the week's drawing sheets (benchmarks/render.py). Goal: total <= 1.25x the baseline sum. The render
stage's OCR of FIG. labels (work the raw loop does not do) is timed apart so the ratio can be read without it.
Prefect's own cost: N trivial tasks called / submitted, timed inside a flow run, and one empty flow run.
Usage: python benchmarks/dag.py [--repeat 3] [--workers 1] [--tasks 50] [--week 2021-03-16]
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Prefect reads its settings at import: a private home (and its embedded server's database) first.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="designclip-bench-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # slow to start on a busy machine

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import designclip.pipeline.render.segment  # noqa: E402
import prefect  # noqa: E402
from designclip.flows.caption import caption_flow  # noqa: E402
from designclip.flows.ingest import ingest_flow  # noqa: E402
from designclip.flows.release import release_flow  # noqa: E402
from designclip.flows.render import render_flow  # noqa: E402
from designclip.pipeline.caption.driver import (  # noqa: E402
    CaptionerSpec,
    caption_shard_file,
    load_captioner,
    prepare_set,
    unload_captioners,
)
from designclip.pipeline.ingest.class_tables import write_class_tables  # noqa: E402
from designclip.pipeline.ingest.download import download_archive  # noqa: E402
from designclip.pipeline.ingest.driver import INGEST  # noqa: E402
from designclip.pipeline.ingest.listing import list_bdss  # noqa: E402
from designclip.pipeline.ingest.mirror import build_bdss_mirror, group_by_week  # noqa: E402
from designclip.pipeline.ingest.parse import _new_parser  # noqa: E402
from designclip.pipeline.release.driver import build_release  # noqa: E402
from designclip.pipeline.render.driver import RENDER, RenderStageOptions  # noqa: E402
from designclip.pipeline.render.patent_views import RenderOptions  # noqa: E402
from designclip.pipeline.render.pool import shutdown_pools  # noqa: E402
from designclip.storage import layout
from designclip.storage.captions import rendered_shards  # noqa: E402
from designclip.storage.folder import DataFolder  # noqa: E402
from designclip.storage.tables import read_sheet_image, read_table  # noqa: E402
from lxml import etree  # noqa: E402
from prefect import flow, task  # noqa: E402
from render import raw_loop  # noqa: E402 (benchmarks/render.py: this script's folder comes first on sys.path)
from support import SAMPLE  # noqa: E402

STAGES = ("ingest", "render", "caption", "release")
PROFILE = layout.DEFAULT_PROFILE
VERSION = "bench-week"
Timings = dict[str, float]


def pick_week(patents_root: Path, week: dt.date | None) -> tuple[dt.date, list[Path]]:
    """The chosen sample week, or the one with the most patents (earliest on a tie)."""
    weeks = group_by_week(patents_root)
    if week is not None:
        if week not in weeks:
            raise SystemExit(f"no sample patents granted on {week}: pick one of {', '.join(map(str, sorted(weeks)))}")
        return week, weeks[week]
    return max(sorted(weeks.items()), key=lambda kv: len(kv[1]))


class OcrClock:
    """Seconds spent reading FIG. labels (OCR) in this process: the render stage's dominant cost when it runs."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0
        self._inner = designclip.pipeline.render.segment.read_sheet_labels
        designclip.pipeline.render.segment.read_sheet_labels = self._timed

    def _timed(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1

    def take(self) -> tuple[float, int]:
        out, self.seconds, self.calls = (self.seconds, self.calls), 0.0, 0
        return out


def clocked(timings: Timings, stage: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    timings[stage] = time.perf_counter() - started
    return result


def predownload(root: str, week: dt.date, base_url: str) -> float:
    """Put the week's archive into `raw/` as the download stage would; seconds taken (excluded from the stages)."""
    started = time.perf_counter()
    for archive in list_bdss(week, week, base_url=base_url):
        download_archive(archive, DataFolder(root))
    return time.perf_counter() - started


def run_plain(root: str, week: dt.date, base_url: str, workers: int) -> tuple[Timings, dict[str, Any]]:
    """The stage functions the Prefect tasks wrap, called directly (what the flows do, minus Prefect)."""
    t: Timings = {}
    folder = DataFolder(root)

    def ingest() -> list[dict[str, Any]]:
        write_class_tables(folder)
        out = []
        for archive in list_bdss(week, week, base_url=base_url):
            download_archive(archive, folder)  # already there: the skip check, as the flow's download task does
            out.append(dict(INGEST.run(folder, archive).stats))
        return out

    def render() -> dict[str, Any]:
        try:
            return dict(RENDER.run(folder, week, RenderStageOptions(RenderOptions(size=512), workers=workers)).stats)
        finally:
            shutdown_pools()

    def caption() -> str:
        try:
            captioner = load_captioner(CaptionerSpec("metadata"))
            caption_set = prepare_set(root, PROFILE, captioner)
            for ref in rendered_shards(folder, PROFILE, week, week):
                caption_shard_file(root, PROFILE, ref, captioner, caption_set)
            return caption_set
        finally:
            unload_captioners()

    ingested = clocked(t, "ingest", ingest)
    rendered = clocked(t, "render", render)
    caption_set = clocked(t, "caption", caption)
    released = clocked(t, "release", lambda: build_release(VERSION, root, PROFILE, caption_source=caption_set))
    return t, {"patents": ingested[0]["patents"], "views": rendered["samples"], "released": released["samples"]}


def run_prefect(root: str, week: dt.date, base_url: str, workers: int) -> tuple[Timings, dict[str, Any]]:
    """The stage flows, each a Prefect flow run on the embedded server (as `designclip demo` runs them)."""
    t: Timings = {}
    ingested = clocked(t, "ingest", lambda: ingest_flow(start=week, end=week, data_root=root, source="bdss",
                                                        base_url=base_url))
    rendered = clocked(t, "render", lambda: render_flow(start=week, end=week, data_root=root, workers=workers))
    captions = clocked(t, "caption", lambda: caption_flow(start=week, end=week, data_root=root,
                                                          captioner="metadata"))
    released = clocked(t, "release", lambda: release_flow(version=VERSION, data_root=root,
                                                          caption_source=captions["caption_set"]))
    return t, {"patents": ingested[0]["patents"], "views": rendered[0]["samples"], "released": released["samples"]}


def run_dag(root: str, week: dt.date, base_url: str, workers: int) -> float:
    """Seconds of the DAG flow itself up to release (`designclip run --until release`): one flow run whose stages
    are tasks (data stages streamed per week, release called inside it), not one flow run per stage."""
    from designclip.flows.pipeline import pipeline_flow
    from designclip.pipeline.dag.run_profile import default_profile

    started = time.perf_counter()
    pipeline_flow(start=week, end=week, data_root=root, until="release", base_url=base_url, release=VERSION,
                  profile=default_profile(gpu=False), render_workers=workers)
    return time.perf_counter() - started


def raw_parse(docs: list[bytes]) -> float:
    """Seconds for raw lxml.etree.fromstring over the week's grant XMLs (benchmarks/parse.py's baseline)."""
    parser = _new_parser()
    started = time.perf_counter()
    for d in docs:
        etree.fromstring(d, parser)
    return time.perf_counter() - started


# -- Prefect's own overhead on trivial tasks ------------------------------------------------------------


@task(name="bench-noop")
def noop(i: int) -> int:
    return i


@flow(name="bench-empty")
def empty_flow() -> None:
    return None


@flow(name="bench-called")
def called_flow(n: int) -> float:
    """Seconds for n trivial tasks called one after another inside a flow run (timed inside the flow)."""
    started = time.perf_counter()
    for i in range(n):
        noop(i)
    return time.perf_counter() - started


@flow(name="bench-submitted")
def submitted_flow(n: int) -> float:
    """Seconds for n trivial tasks submitted to the flow's thread pool and waited for (timed inside the flow)."""
    started = time.perf_counter()
    for f in [noop.submit(i) for i in range(n)]:
        f.result()
    return time.perf_counter() - started


def prefect_overhead(n: int, repeat: int) -> dict[str, float]:
    """Best-of-`repeat` seconds: one empty flow run, n called / n submitted tasks, n direct calls of the function."""
    best = {k: float("inf") for k in ("flow", "called", "submitted", "direct")}
    for _ in range(repeat):
        started = time.perf_counter()
        empty_flow()
        best["flow"] = min(best["flow"], time.perf_counter() - started)
        best["called"] = min(best["called"], called_flow(n))
        best["submitted"] = min(best["submitted"], submitted_flow(n))
        started = time.perf_counter()
        for i in range(n):
            noop.fn(i)
        best["direct"] = min(best["direct"], time.perf_counter() - started)
    return best


# -- report ------------------------------------------------------------------------------------------


def best_of(runs: list[Timings]) -> Timings:
    return {s: min(r[s] for r in runs) for s in STAGES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="repetitions; the best time of each measure is kept")
    ap.add_argument("--workers", type=int, default=1, help="render worker processes (the flow's default is all cores)")
    ap.add_argument("--tasks", type=int, default=50, help="trivial tasks per flow for the Prefect overhead")
    ap.add_argument("--week", type=dt.date.fromisoformat, help="a sample grant Tuesday (default: the busiest week)")
    args = ap.parse_args()

    week, folders = pick_week(SAMPLE, args.week)
    ocr = OcrClock()
    docs = [next(f.glob("*.XML")).read_bytes() for f in folders]
    with tempfile.TemporaryDirectory(prefix="designclip-bench-") as tmp_name:
        tmp = Path(tmp_name)
        mirror = tmp / "mirror"
        build_bdss_mirror(SAMPLE, mirror)
        base_url = mirror.as_uri()
        archive_mib = sum(p.stat().st_size for p in mirror.rglob(f"I{week:%Y%m%d}*.tar")) / 2**20

        started = time.perf_counter()
        empty_flow()  # the embedded server starts on the first flow run: once per process, timed apart
        server_s = time.perf_counter() - started

        plain_runs: list[Timings] = []
        prefect_runs: list[Timings] = []
        parse_s, render_s, download_s, dag_s = [], [], [], []
        ocr_s: dict[str, list[float]] = {"plain": [], "prefect": []}
        ocr_sheets = 0
        counts: dict[str, dict[str, Any]] = {}
        sheets: list[bytes] = []
        for rep in range(args.repeat):
            for kind, runner, runs in (("plain", run_plain, plain_runs), ("prefect", run_prefect, prefect_runs)):
                root = str(tmp / f"{kind}-{rep}")
                download_s.append(predownload(root, week, base_url))
                timings, counts[kind] = runner(root, week, base_url, args.workers)
                runs.append(timings)
                seconds, ocr_sheets = ocr.take()
                ocr_s[kind].append(seconds)
                if not sheets:
                    folder = DataFolder(root)
                    sheets = [read_sheet_image(folder, s) for s in read_table(folder, "sheets").to_pylist()
                              if s["sheet"]]
                shutil.rmtree(root)
            root = str(tmp / f"dag-{rep}")
            predownload(root, week, base_url)
            dag_s.append(run_dag(root, week, base_url, args.workers))
            ocr.take()
            shutil.rmtree(root)
            parse_s.append(raw_parse(docs))
            render_s.append(raw_loop(sheets, 512)[0])  # (wall, CPU) seconds: the wall time
        if counts["plain"] != counts["prefect"]:
            raise SystemExit(f"the two paths disagree: plain {counts['plain']} vs Prefect {counts['prefect']}")
        overhead = prefect_overhead(args.tasks, args.repeat)
        time.sleep(1.0)  # let the embedded server record the last task events before it is stopped at exit

    plain, pref = best_of(plain_runs), best_of(prefect_runs)
    base = min(parse_s) + min(render_s)
    plain_total, pref_total = sum(plain.values()), sum(pref.values())
    c = counts["plain"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"Prefect {prefect.__version__} (embedded server; its start took {server_s:.1f} s, excluded)")
    print(f"week {week}: {c['patents']} patents, {len(sheets)} drawing sheets -> {c['views']} views "
          f"({c['released']} released); archive {archive_mib:.1f} MiB from a local BDSS mirror, "
          f"download {min(download_s):.3f} s (excluded)")
    print(f"best of {args.repeat} per stage, render workers={args.workers}, metadata captions, Prefect log level "
          f"{os.environ['PREFECT_LOGGING_LEVEL']}")
    print()
    print(f"{'stage':10s} {'plain s':>9s} {'Prefect s':>10s} {'Prefect extra s':>16s}")
    for s in STAGES:
        print(f"{s:10s} {plain[s]:9.3f} {pref[s]:10.3f} {pref[s] - plain[s]:16.3f}")
    print(f"{'total':10s} {plain_total:9.3f} {pref_total:10.3f} {pref_total - plain_total:16.3f}")
    print()
    print(f"raw baselines: parse {min(parse_s):.4f} s (lxml.etree.fromstring, {len(docs)} grant XMLs) + render "
          f"{min(render_s):.3f} s (Pillow loop, {len(sheets)} sheets) = {base:.3f} s")
    print(f"ratio total / baselines: plain stages {plain_total / base:.2f}x, Prefect flows {pref_total / base:.2f}x "
          f"(goal <= 1.25x); Prefect's share of the flow total: {(pref_total - plain_total) / pref_total:.0%}")
    if args.workers == 1 and ocr_sheets:
        o_plain, o_pref = min(ocr_s["plain"]), min(ocr_s["prefect"])
        print(f"of which OCR of FIG. labels ({ocr_sheets} sheets of patents with more FIG.s than sheets; not in the "
              f"raw loop): plain {o_plain:.2f} s, Prefect {o_pref:.2f} s; without it: plain "
              f"{(plain_total - o_plain) / base:.2f}x, Prefect {(pref_total - o_pref) / base:.2f}x")
    n = args.tasks
    print(f"Prefect overhead ({n} trivial tasks per flow, best of {args.repeat}): per task "
          f"{overhead['called'] / n * 1e3:.1f} ms called in a flow, {overhead['submitted'] / n * 1e3:.1f} ms submitted "
          f"to the thread pool (direct call {overhead['direct'] / n * 1e6:.2f} us); per flow run (empty) "
          f"{overhead['flow'] * 1e3:.0f} ms")
    dag = min(dag_s)
    print(f"the DAG flow up to release (one flow run, stages as its tasks, data stages streamed): {dag:.3f} s = "
          f"plain + {dag - plain_total:.3f} s, i.e. {(dag - plain_total) / len(STAGES):.3f} s of Prefect per stage "
          f"(one flow run per stage: {(pref_total - plain_total) / len(STAGES):.3f} s per stage); {dag / base:.2f}x "
          "the baselines")
    ratio = pref_total / base
    verdict = "met" if ratio <= 1.25 else "NOT met"
    print(f"verdict: goal {verdict}: the week end to end takes {pref_total:.2f} s with Prefect = {ratio:.2f}x the "
          f"raw parse+render baselines ({base:.2f} s); without Prefect {plain_total / base:.2f}x; Prefect adds "
          f"{pref_total - plain_total:.2f} s over {len(STAGES)} flow runs")


if __name__ == "__main__":
    main()
