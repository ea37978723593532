"""Peak memory of ingesting one weekly archive: must stay flat as the week grows (a real week: ~1000 patents).

Builds weeks of N patents from the real fixtures (doc numbers rewritten so every patent is distinct),
ingests each in a fresh process, and prints peak RSS against the raw baseline of the same run: reading
that archive whole into memory (what a non-streaming reader would hold at least).
Usage: python benchmarks/ingest_memory.py [--sizes 100 400 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "designclip" / "sample" / "patents"
WEEK = dt.date(2021, 1, 5)


def _patent_zip(folder: Path, n: int) -> tuple[str, bytes]:
    """The fixture patent renumbered as USD09{n:05d} (XML doc-number and file names)."""
    old = folder.name.split("-")[0]
    new = f"USD09{n:05d}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            data = f.read_bytes()
            if f.suffix == ".XML":
                data = data.replace(old[2:].encode(), new[2:].encode()).replace(old.encode(), new.encode())
            zf.writestr(f"{folder.name.replace(old, new)}/{f.name.replace(old, new)}", data)
    return f"I{WEEK:%Y%m%d}/DESIGN/{folder.name.replace(old, new)}.ZIP", buf.getvalue()


def build_week(n: int, out: Path) -> Path:
    folders = sorted(p for p in SAMPLE.iterdir() if p.is_dir())
    with tarfile.open(out, "w") as tar:
        for i in range(n):
            name, data = _patent_zip(folders[i % len(folders)], i)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _child(mode: str, archive: str, data_root: str) -> None:
    if mode == "raw":
        blob = Path(archive).read_bytes()
        print(len(blob))
    else:
        from designclip.pipeline.ingest.week_archive import ingest_archive
        from designclip.storage.folder import DataFolder
        from designclip.storage.tables import WeekWriter

        with WeekWriter(DataFolder(data_root), WEEK, Path(archive).name) as sink:
            stats = ingest_archive(archive, Path(archive).name, WEEK, sink)
        print(stats.patents)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # MiB on Linux


def _measure(mode: str, archive: Path, data_root: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(archive), str(data_root)],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 400, 1000])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"{'patents':>8} {'archive MiB':>12} {'raw read-all RSS MiB':>21} {'ingest RSS MiB':>15} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            archive = build_week(n, Path(tmp) / f"I{WEEK:%Y%m%d}.tar")
            _, raw_rss = _measure("raw", archive, Path(tmp) / "unused")
            patents, ours = _measure("ingest", archive, Path(tmp) / f"data{n}")
            assert patents == n, f"expected {n} patents, ingested {patents}"
            size = archive.stat().st_size / 2**20
            print(f"{n:>8} {size:>12.0f} {raw_rss:>21} {ours:>15} {ours / raw_rss:>6.2f}")
            archive.unlink()


if __name__ == "__main__":
    main()
