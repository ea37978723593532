"""Render stage throughput: views/s of the stage against a raw Pillow loop over the same sheets, same run.

Raw baseline: for every drawing sheet, decode the TIFF, convert to gray, resize to the view size, encode
PNG (one image per sheet, no segmentation, no shards). The stage adds landscape rotation, reading the "FIG."
labels of every sheet (text-line candidates + OCR), per-FIG. crops with labels erased, perceptual hashes,
metadata, tar + Parquet + stats writing.
Two groups are reported, each as ONE weekly archive (so per-week overheads are amortised as in a real
~1000-patent week): patents with one FIG. per sheet and all 30 sample patents; then each group's speed-up
from the first worker count to the others (the pool schedules sheets, not patents). Every time is the best
of --repeat runs (the raw loop's too), on a pool kept warm across runs as a real run keeps it across weeks.
A second line per run gives CPU seconds per view (this process + the pool's workers) against the raw loop's CPU
seconds per sheet: on a shared machine that ratio is what the wall ratio would be with the cores to itself.
Usage: python benchmarks/render.py [--workers 1 2] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.driver import INGEST
from designclip.pipeline.ingest.mirror import build_weekly_tar
from designclip.pipeline.render import pool as render_pool
from designclip.pipeline.render.driver import RENDER, RenderStageOptions
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.pipeline.render.pool import shutdown_pools, warm_pool
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_sheet_image, read_table
from PIL import Image
from support import sample_folders


def cpu_seconds(workers: int) -> float:
    """CPU seconds used so far by this process and the render pool's workers: a ratio of these does not depend on
    what else shares the machine (wall times on a busy 2-core machine do)."""
    total = time.process_time()
    if workers > 1:
        for pid in list(render_pool._pool(workers)._processes):  # the benchmark peeks at the pool's processes
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def raw_loop(images: list[bytes], size: int) -> tuple[float, float]:
    """Seconds (wall, CPU) for decode -> gray -> resize -> PNG over every sheet."""
    started, cpu = time.perf_counter(), time.process_time()
    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            gray = im.convert("L")
        small = gray.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        small.save(io.BytesIO(), format="PNG")
    return time.perf_counter() - started, time.process_time() - cpu


def stage(root: str, weeks: list[dt.date], size: int, workers: int) -> tuple[float, int, float]:
    """(wall seconds, views, CPU seconds of this process and the workers) of rendering the weeks."""
    folder = DataFolder(root)
    shutil.rmtree(folder.path("shards"), ignore_errors=True)
    shutil.rmtree(folder.path("_stats/render"), ignore_errors=True)
    warm_pool(workers)  # a real run pays the ~1 s pool start once per process, not per week
    started, cpu = time.perf_counter(), cpu_seconds(workers)
    options = RenderStageOptions(RenderOptions(size=size), workers=workers)
    views = sum(RENDER.run(folder, w, options).stats["samples"] for w in weeks)
    return time.perf_counter() - started, views, cpu_seconds(workers) - cpu


def _one_fig_per_sheet(folder: Path) -> bool:
    from designclip.pipeline.ingest.parse import parse_grant

    grant = parse_grant(next(folder.glob("*.XML")).read_bytes())
    return len(grant.figures) == len([s for s in grant.sheets if s["sheet"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    week = dt.date(2021, 1, 5)
    folders = sample_folders()
    simple = [f for f in folders if _one_fig_per_sheet(f)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, group in (("one FIG. per sheet (no OCR)", simple), ("all sample patents", folders)):
            root = str(Path(tmp) / f"data-{len(group)}")
            tar = build_weekly_tar(week, group, Path(tmp) / f"{len(group)}" / "I20210105.tar")
            INGEST.run(DataFolder(root), WeeklyArchive(week, tar.name, tar.as_uri(), source="local"))
            folder = DataFolder(root)
            images = [read_sheet_image(folder, s) for s in read_table(folder, "sheets").to_pylist() if s["sheet"]]
            rates = {}
            for workers in args.workers:
                raw_s, raw_cpu = min(raw_loop(images, args.size) for _ in range(args.repeat))
                stage_s, views, stage_cpu = min(stage(root, [week], args.size, workers) for _ in range(args.repeat))
                raw_rate, stage_rate = len(images) / raw_s, views / stage_s
                rates[workers] = stage_rate
                print(f"{label:28s} workers={workers}: stage {views} views in {stage_s:5.1f}s = {stage_rate:5.1f}/s; "
                      f"raw loop {len(images)} sheets in {raw_s:4.1f}s = {raw_rate:5.1f}/s; "
                      f"ratio {stage_rate / raw_rate:.2f}", flush=True)
                cpu_ratio = (raw_cpu / len(images)) / (stage_cpu / views)
                print(f"{label:28s} workers={workers}: CPU {1000 * stage_cpu / views:.1f} ms/view against "
                      f"{1000 * raw_cpu / len(images):.1f} ms/sheet raw: CPU ratio {cpu_ratio:.2f}; "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
            first = args.workers[0]
            for workers in args.workers[1:]:
                speedup = rates[workers] / rates[first]
                print(f"{label:28s} speed-up workers={first}->{workers}: {speedup:.2f}x", flush=True)
        shutdown_pools()


if __name__ == "__main__":
    main()
