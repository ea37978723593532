"""Render stage throughput: views/s of the stage against a raw Pillow loop over the same sheets, same run.

Raw baseline: for every drawing sheet, decode the TIFF, convert to gray, resize to the view size, encode
PNG (one image per sheet, no segmentation, no shards). The stage adds landscape rotation, OCR of "FIG."
labels where a patent has more FIG.s than sheets, per-FIG. crops, metadata, tar + Parquet + stats writing.
Two groups are reported, each as ONE weekly archive (so per-week overheads are amortised as in a real
~1000-patent week and workers have patents to share): patents with one FIG. per sheet (no OCR needed)
and all 30 sample patents.
Usage: python benchmarks/render.py [--workers 1 2] [--size 512]
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
from designclip.pipeline.render.driver import RENDER, RenderStageOptions
from designclip.pipeline.render.patent_views import RenderOptions
from designclip.pipeline.render.pool import shutdown_pools, warm_pool
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_sheet_image, read_table
from PIL import Image
from support import sample_folders


def raw_loop(images: list[bytes], size: int) -> float:
    """Seconds for decode -> gray -> resize -> PNG over every sheet."""
    started = time.perf_counter()
    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            gray = im.convert("L")
        small = gray.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        small.save(io.BytesIO(), format="PNG")
    return time.perf_counter() - started


def stage(root: str, weeks: list[dt.date], size: int, workers: int) -> tuple[float, int]:
    folder = DataFolder(root)
    shutil.rmtree(folder.path("shards"), ignore_errors=True)
    shutil.rmtree(folder.path("_stats/render"), ignore_errors=True)
    warm_pool(workers)  # a real run pays the ~1 s pool start once per flow, not per week
    started = time.perf_counter()
    options = RenderStageOptions(RenderOptions(size=size), workers=workers)
    views = sum(RENDER.run(folder, w, options).stats["samples"] for w in weeks)
    return time.perf_counter() - started, views


def _one_fig_per_sheet(folder: Path) -> bool:
    from designclip.pipeline.ingest.parse import parse_grant

    grant = parse_grant(next(folder.glob("*.XML")).read_bytes())
    return len(grant.figures) == len([s for s in grant.sheets if s["sheet"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
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
            for workers in args.workers:
                raw_s = raw_loop(images, args.size)
                stage_s, views = stage(root, [week], args.size, workers)
                raw_rate, stage_rate = len(images) / raw_s, views / stage_s
                print(f"{label:28s} workers={workers}: stage {views} views in {stage_s:5.1f}s = {stage_rate:5.1f}/s; "
                      f"raw loop {len(images)} sheets in {raw_s:4.1f}s = {raw_rate:5.1f}/s; "
                      f"ratio {stage_rate / raw_rate:.2f}", flush=True)
        shutdown_pools()


if __name__ == "__main__":
    main()
