"""Where every artefact lives under the data root; no other module builds these paths."""

from __future__ import annotations

import datetime as dt

TABLE_NAMES = ("patents", "figures", "sheets", "errors")


def week_id(week: dt.date) -> str:
    """The unit id of one weekly archive, independent of its revision: `I20210105`."""
    return f"I{week:%Y%m%d}"


def raw_archive(week: dt.date, archive_name: str) -> str:
    return f"raw/{week:%Y}/{archive_name}"


def raw_manifest(week: dt.date, archive_name: str) -> str:
    """Sidecar written after a verified download: size, sha256, source URL (never the key)."""
    return f"{raw_archive(week, archive_name)}.json"


def table_file(table: str, week: dt.date) -> str:
    return f"{table}/{week_id(week)}.parquet"


def images_file(week: dt.date) -> str:
    """One uncompressed tar of the week's TIFF sheets; `sheets` rows point at byte ranges in it."""
    return f"images/{week_id(week)}.tar"


def stats_marker(stage: str, week: dt.date) -> str:
    """The per-unit stats JSON, written last: its presence means the unit is done."""
    return f"_stats/{stage}/{week_id(week)}.json"


def class_table(name: str) -> str:
    return f"classes/{name}.parquet"
