"""The bundled sample: 30 real 2021 design patents (public domain), unpacked as `designclip/sample/patents/<id>/`."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path


def sample_patents_dir() -> Path:
    """The folder of the bundled sample patents (one folder per grant: its XML and TIFF sheets)."""
    return Path(str(resources.files("designclip").joinpath("sample/patents")))


def ingest_sample_weeks(data_root: Path, weeks: list[dt.date], work: Path) -> None:
    """Ingest some weeks of the bundled sample into `data_root` without Prefect: real weekly tars, the real parser."""
    from designclip.pipeline.ingest.archives import WeeklyArchive
    from designclip.pipeline.ingest.driver import INGEST
    from designclip.pipeline.ingest.mirror import build_weekly_tar, group_by_week
    from designclip.storage.folder import DataFolder

    by_week = group_by_week(sample_patents_dir())
    for week in weeks:
        tar = build_weekly_tar(week, by_week[week], work / f"I{week:%Y%m%d}.tar")
        archive = WeeklyArchive(week=week, name=tar.name, url=tar.as_uri(), source="local")
        INGEST.run(DataFolder(data_root), archive)
