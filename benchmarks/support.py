"""What several benchmarks build from the bundled sample: a patent's render input, ingested sample weeks.

A benchmark imports it as `support` (its own folder is first on sys.path when run as `python benchmarks/X.py`);
nothing here comes from tests/ or needs pytest.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from designclip.pipeline.ingest.archives import WeeklyArchive
from designclip.pipeline.ingest.mirror import build_weekly_tar, group_by_week
from designclip.pipeline.ingest.parse import parse_grant
from designclip.pipeline.ingest.sample import sample_patents_dir
from designclip.pipeline.render.patent_views import PatentInput

SAMPLE = sample_patents_dir()


def sample_folders() -> list[Path]:
    """The bundled sample patents' folders, in name order."""
    return sorted(p for p in SAMPLE.iterdir() if p.is_dir())


def patent_input(folder: Path) -> PatentInput:
    """A PatentInput built straight from one unpacked grant folder (its XML and TIFF sheets), no data root."""
    grant = parse_grant(next(folder.glob("*.XML")).read_bytes())
    sheets = [dict(s) for s in grant.sheets]
    images = {s["sheet"]: (folder / s["file"]).read_bytes() for s in sheets if (folder / s["file"]).exists()}
    return PatentInput(dict(grant.patent), [dict(f) for f in grant.figures], sheets, images)


def ingest_sample_weeks(data_root: Path, weeks: list[dt.date], work: Path) -> None:
    """Ingest some weeks of the bundled sample into `data_root` (no Prefect): real tars through the real parser."""
    from designclip.pipeline.ingest.driver import INGEST
    from designclip.storage.folder import DataFolder

    by_week = group_by_week(SAMPLE)
    for week in weeks:
        tar = build_weekly_tar(week, by_week[week], work / f"I{week:%Y%m%d}.tar")
        archive = WeeklyArchive(week=week, name=tar.name, url=tar.as_uri(), source="local")
        INGEST.run(DataFolder(data_root), archive)
