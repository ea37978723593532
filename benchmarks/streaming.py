"""The streaming DAG vs its stages run one after another, on the 20 sample weeks from a throttled loopback mirror.

Three measures in one run, each on a fresh data root, all through Prefect flows on the embedded server:
1. calibration: the render flow alone (after an unthrottled ingest) sets the mirror's speed so that downloading every
   week takes about as long as rendering them (`--download-share 1.0`);
2. one after another, as `designclip ingest`, `render`, `caption` run them: (a) their sum, (b) the slowest alone;
3. streamed, as `designclip run --until caption` runs: its wall time, and the ratio to (b) (goal <= 1.2).
Then the streamed run once more on its finished data root (every unit skipped: the DAG's fixed cost).
Usage: python benchmarks/streaming.py [--download-share 1.0] [--workers N]
"""

from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import: a private home (and its embedded server's database) first.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="designclip-bench-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from designclip.flows.caption import caption_flow  # noqa: E402
from designclip.flows.ingest import ingest_flow  # noqa: E402
from designclip.flows.pipeline import pipeline_flow  # noqa: E402
from designclip.flows.render import render_flow  # noqa: E402
from designclip.pipeline.dag.run_profile import default_profile  # noqa: E402
from designclip.pipeline.ingest.loopback import serve_folder  # noqa: E402
from designclip.pipeline.ingest.mirror import build_bdss_mirror  # noqa: E402
from prefect import flow  # noqa: E402
from support import SAMPLE  # noqa: E402

START, END = dt.date(2021, 1, 1), dt.date(2021, 12, 31)
DOWNLOADS = 2  # concurrent downloads from a BDSS mirror (the default of --max-downloads)


@flow(name="bench-empty")
def empty_flow() -> None:
    return None


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def one_after_another(root: str, base_url: str, workers: int | None) -> dict[str, float]:
    """Seconds of each data stage flow, run as the stage commands run them (download is part of ingest)."""
    return {
        "ingest": timed(lambda: ingest_flow(start=START, end=END, data_root=root, base_url=base_url)),
        "render": timed(lambda: render_flow(start=START, end=END, data_root=root, workers=workers)),
        "caption": timed(lambda: caption_flow(start=START, end=END, data_root=root, captioner="metadata")),
    }


def streamed(root: str, base_url: str, workers: int | None) -> float:
    """Seconds of `designclip run --until caption` (the DAG flow, CPU profile: metadata captions)."""
    return timed(lambda: pipeline_flow(start=START, end=END, data_root=root, until="caption", base_url=base_url,
                                       profile=default_profile(gpu=False), render_workers=workers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--download-share", type=float, default=1.0,
                    help="download time of all weeks as a share of the render time (default 1.0: about equal)")
    ap.add_argument("--workers", type=int, default=None, help="render worker processes (default: all cores)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="designclip-bench-stream-") as tmp_name:
        tmp = Path(tmp_name)
        mirror = tmp / "mirror"
        weeks = build_bdss_mirror(SAMPLE, mirror)
        archive_bytes = sum(p.stat().st_size for p in weeks)
        server_s = timed(empty_flow)  # the embedded server starts on the first flow run: timed apart
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}; {len(weeks)} weekly archives, {archive_bytes / 2**20:.1f} MiB; "
              f"Prefect server start {server_s:.1f} s; load {os.getloadavg()[0]:.1f}")

        with serve_folder(mirror) as fast_url:
            calibration = one_after_another(str(tmp / "calibrate"), fast_url, args.workers)
        # per connection: the ingest stage downloads DOWNLOADS archives at a time
        rate = archive_bytes / max(0.1, calibration["render"] * args.download_share) / DOWNLOADS
        print(f"calibration (full-speed mirror): ingest {calibration['ingest']:.1f} s, render "
              f"{calibration['render']:.1f} s, caption {calibration['caption']:.1f} s -> mirror throttled to "
              f"{rate / 2**20:.2f} MiB/s per download, {DOWNLOADS} at a time")

        with serve_folder(mirror, rate) as slow_url:
            stages = one_after_another(str(tmp / "sequential"), slow_url, args.workers)
            wall = streamed(str(tmp / "streamed"), slow_url, args.workers)
            noop = streamed(str(tmp / "streamed"), slow_url, args.workers)
        total, slowest = sum(stages.values()), max(stages.values())
        name = max(stages, key=lambda s: stages[s])
        print("stages one after another: " + ", ".join(f"{s} {t:.1f} s" for s, t in stages.items()))
        print(f"(a) sum of the stages: {total:.1f} s; (b) slowest stage alone ({name}): {slowest:.1f} s")
        print(f"streamed run --until caption: {wall:.1f} s = {wall / total:.2f} x (a), "
              f"ratio {wall / slowest:.2f} x (b) "
              f"(goal <= 1.2)")
        print(f"streamed rerun, every unit already done: {noop:.1f} s (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
