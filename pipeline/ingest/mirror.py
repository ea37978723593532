"""Build BDSS-layout weekly archives from per-patent folders: the bundled sample and the tests' mirror."""

from __future__ import annotations

import datetime as dt
import io
import os
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path

_FIXED_TIME = (2021, 1, 1, 0, 0, 0)


def patent_week(folder: Path) -> dt.date:
    """`USD0907292-20210105` -> 2021-01-05 (the grant Tuesday)."""
    return dt.datetime.strptime(folder.name.rsplit("-", 1)[1], "%Y%m%d").date()


def build_patent_zip(folder: Path) -> bytes:
    """The per-patent ZIP as the USPTO ships it: the patent's folder with its XML and TIFF sheets."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            info = zipfile.ZipInfo(f"{folder.name}/{f.name}", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, f.read_bytes())
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1609459200
    tar.addfile(info, io.BytesIO(data))


def write_tar(out: Path, members: dict[str, bytes]) -> Path:
    """A plain tar of `members` (path -> bytes) with fixed times, written to a temporary name, then renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            _add(tar, name, data)
    os.replace(tmp, out)
    return out


def build_weekly_tar(week: dt.date, folders: list[Path], out: Path, extra: dict[str, bytes] | None = None) -> Path:
    """`I{date}.tar` with `I{date}/DESIGN/<patent>.ZIP` members (plus `extra` members, e.g. UTIL or faults)."""
    top = f"I{week:%Y%m%d}"
    members = {f"{top}/DESIGN/{folder.name}.ZIP": build_patent_zip(folder) for folder in sorted(folders)}
    return write_tar(out, members | (extra or {}))


def build_ipg(folders: list[Path], out: Path) -> Path:
    """The weekly no-images form: every grant XML concatenated, each keeping its own <?xml ?> and DOCTYPE."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        for folder in sorted(folders):
            xml = next(folder.glob("*.XML")).read_bytes()
            f.write(xml if xml.endswith(b"\n") else xml + b"\n")
    return out


def group_by_week(patents_root: Path) -> dict[dt.date, list[Path]]:
    weeks: dict[dt.date, list[Path]] = defaultdict(list)
    for folder in sorted(p for p in patents_root.iterdir() if p.is_dir()):
        weeks[patent_week(folder)].append(folder)
    return dict(weeks)


def build_bdss_mirror(patents_root: Path, out_root: Path) -> list[Path]:
    """A folder laid out like bulkdata.uspto.gov: `data/patent/grant/redbook/{YYYY}/I{YYYYMMDD}.tar`."""
    built = []
    for week, folders in group_by_week(patents_root).items():
        out = out_root / "data/patent/grant/redbook" / f"{week:%Y}" / f"I{week:%Y%m%d}.tar"
        if not out.exists():
            build_weekly_tar(week, folders, out)
        built.append(out)
    return built
