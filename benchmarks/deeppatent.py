"""What a DeepPatent rebuild costs per sheet and per week, against a raw TIFF -> PNG loop over the same sheets.

The bundled sample (20 weeks of 2021) is ingested and rendered, then `deeppatent build` runs with lists that name
half of the sample patents as test/val (so their views are written too) and a training range over the whole year
(so every sheet of the other patents is a training sheet). Baseline, measured in the same run: PIL opening each
TIFF from the patent folders and saving it as an 8-bit PNG, nothing else. Printed: seconds and bytes per sheet,
the ratio build / raw, the views' share, and the extrapolation to DeepPatent's ~4.5k sheets a week and 78 weeks.
Usage: python benchmarks/deeppatent.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import shutil
import tempfile
import time
from pathlib import Path

from designclip.pipeline.deeppatent.driver import DeepPatentOptions
from designclip.pipeline.deeppatent.outputs import build
from designclip.pipeline.ingest.mirror import group_by_week
from designclip.pipeline.ingest.sample import ingest_sample_weeks
from designclip.pipeline.render.driver import RENDER
from designclip.storage.folder import DataFolder
from PIL import Image
from support import SAMPLE, sample_folders

DEEPPATENT_WEEKS, SHEETS_PER_WEEK = 78, 4500
"""DeepPatent: ~350k sheets over 78 weekly archives (2018-01..2019-06 plus one 2020 week)."""


def write_lists(out: Path, folders: list[Path]) -> Path:
    """Test/val lists naming every other sample patent's sheets (labels = patent index), DeepPatent's format."""
    out.mkdir(parents=True)
    listed = folders[::2]
    halves = {"test": listed[: len(listed) // 2], "val": listed[len(listed) // 2:]}
    for split, patents in halves.items():
        query, db = [], []
        for label, folder in enumerate(patents, 1):
            pid, date = folder.name.split("-")
            for i, tif in enumerate(sorted(folder.glob("*-D0*.TIF"))):
                line = f"I{date}/{folder.name}/{tif.stem}.png {label}\n"
                (query if i == 0 else db).append(line)
        (out / f"{split}_query_patent.txt").write_text("".join(query))
        (out / f"{split}_db_patent.txt").write_text("".join(db))
    return out


def raw_seconds(folders: list[Path]) -> tuple[float, int]:
    """Seconds to decode every sheet TIFF and encode it as PNG in memory (the least a rebuild must do)."""
    started, sheets = time.perf_counter(), 0
    for folder in folders:
        for tif in sorted(folder.glob("*-D0*.TIF")):
            Image.open(tif).convert("L").save(io.BytesIO(), format="PNG", optimize=False)
            sheets += 1
    return time.perf_counter() - started, sheets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="builds timed (each on a fresh copy); the best is kept")
    args = ap.parse_args()
    folders = sample_folders()
    weeks = sorted(group_by_week(SAMPLE))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        ingest_sample_weeks(data, weeks, work)
        for week in weeks:
            RENDER.run(DataFolder(str(data)), week)
        lists = write_lists(work / "lists", folders)
        options = DeepPatentOptions(str(lists), start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31))
        builds = []
        for i in range(args.repeat):
            copy = work / f"copy{i}"
            shutil.copytree(data, copy)
            started = time.perf_counter()
            summary = build(DataFolder(str(copy)), options)
            builds.append(time.perf_counter() - started)
        out = copy / "deeppatent" / "deeppatent"
        sheet_bytes = sum(p.stat().st_size for p in (out / "images").rglob("*.png"))
        view_files = list((out / "views" / "images").rglob("*.png"))
        view_bytes = sum(p.stat().st_size for p in view_files)
        raw = min(raw_seconds(folders)[0] for _ in range(args.repeat))
    sheets = raw_seconds(folders)[1]
    best = min(builds)
    per_sheet = best / sheets
    print(f"sheets {sheets} ({summary['listed_sheets']} listed, {summary['train_sheets']} training) in "
          f"{len(weeks)} weeks; {len(view_files)} per-FIG. views written for the {len(folders[::2])} listed patents")
    print(f"build {best:.2f} s (best of {args.repeat}) = {per_sheet * 1000:.1f} ms/sheet; raw TIFF->PNG "
          f"{raw:.2f} s = {raw / sheets * 1000:.1f} ms/sheet; ratio build/raw {best / raw:.2f}x")
    print(f"PNG {sheet_bytes / sheets / 1024:.1f} KiB/sheet; views {view_bytes / 2**20:.2f} MiB "
          f"({view_bytes / max(1, len(view_files)) / 1024:.1f} KiB/view)")
    week_s, week_mb = per_sheet * SHEETS_PER_WEEK, sheet_bytes / sheets * SHEETS_PER_WEEK / 1e6
    print(f"extrapolated (not measured): {SHEETS_PER_WEEK} sheets/week -> {week_s / 60:.1f} min and "
          f"{week_mb:.0f} MB per week; {DEEPPATENT_WEEKS} weeks -> {week_s * DEEPPATENT_WEEKS / 3600:.1f} h on one "
          f"core, {week_mb * DEEPPATENT_WEEKS / 1e3:.1f} GB")


if __name__ == "__main__":
    main()
