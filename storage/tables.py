"""Write one week's tables and sheet images atomically, then its stats marker; read tables back."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
import tarfile
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import DoneMarker
from designclip.storage.schemas import TABLES

PATENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
"""A patent id names image tar members, sample keys and files downstream: letters and digits, at most 32."""
MAX_MEMBER_NAME = 100
"""The images tar is USTAR: a sheet's member name (`<patent id>/<file>`) holds at most 100 bytes of its file."""


class UnstorablePatent(ValueError):
    """A patent that cannot be stored as it is (an odd doc-number, a sheet name too long): one error row, not a week."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_storable(patent_id: str, stored_files: list[str]) -> None:
    """Raise UnstorablePatent before any row is written when the id or a stored sheet's file name cannot be kept."""
    if not PATENT_ID.match(patent_id or ""):
        raise UnstorablePatent("invalid_doc_number", f"patent id {patent_id[:60]!r} ({len(patent_id)} characters) is "
                               "not 1 to 32 letters and digits; it would name files and sample keys downstream")
    for file in stored_files:
        name = f"{patent_id}/{file}"
        try:
            tarfile.TarInfo(name).tobuf(tarfile.USTAR_FORMAT)
        except ValueError as exc:
            shown = f"{file[:60]!r}{'...' if len(file) > 60 else ''}"
            raise UnstorablePatent("unstorable_name", f"sheet file name {shown} ({len(file)} characters) cannot be "
                                   f"stored in the images tar ({exc}; {MAX_MEMBER_NAME} at most)") from exc
        if "/" in file or file in (".", ".."):
            raise UnstorablePatent("unstorable_name", f"sheet file name {file!r} is not a plain file name")


class _BufferedTable:
    """Rows buffered and flushed as Parquet row groups, so a week's memory stays flat."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema, batch_rows: int) -> None:
        self.writer, self.schema, self.batch_rows = writer, schema, batch_rows
        self.rows: list[dict[str, Any]] = []
        self.count = 0

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.count += len(self.rows)
            self.rows = []


class WeekWriter:
    """The ingest sink for one week: four Parquet tables + an images tar, all renamed into place together."""

    def __init__(self, folder: DataFolder, week: dt.date, source_archive: str, batch_rows: int = 256) -> None:
        self.folder, self.week, self.source_archive, self.batch_rows = folder, week, source_archive, batch_rows
        self._stack = contextlib.ExitStack()
        self.tables: dict[str, _BufferedTable] = {}
        self.image_rel = layout.images_file(week)

    def __enter__(self) -> WeekWriter:
        for rel in (*(layout.table_file(name, self.week) for name in TABLES), self.image_rel,
                    layout.stats_marker("ingest", self.week)):
            self.folder.remove_temporaries_of(rel)  # what a killed ingest of this week left (the images one: GBs)
        stack = self._stack.__enter__()
        for name, schema in TABLES.items():
            f = stack.enter_context(self.folder.atomic_open(layout.table_file(name, self.week)))
            writer = stack.enter_context(pq.ParquetWriter(f, schema, compression="zstd"))
            self.tables[name] = _BufferedTable(writer, schema, self.batch_rows)
        image_file = stack.enter_context(self.folder.atomic_open(self.image_rel))
        self.images = stack.enter_context(tarfile.open(fileobj=image_file, mode="w", format=tarfile.USTAR_FORMAT))
        return self

    def __exit__(self, *exc: object) -> bool | None:
        if exc[0] is None:
            for table in self.tables.values():
                table.flush()
        return self._stack.__exit__(*exc)

    def _store_image(self, patent_id: str, file: str, data: bytes) -> tuple[int, str]:
        """Append the TIFF to the week's tar and return its data offset (readable later by byte range)."""
        info = tarfile.TarInfo(f"{patent_id}/{file}")
        info.size = len(data)
        header = len(info.tobuf(tarfile.USTAR_FORMAT))
        offset = self.images.offset + header
        self.images.addfile(info, io.BytesIO(data))
        return offset, hashlib.sha256(data).hexdigest()

    def add(self, grant: Any, images: dict[str, bytes]) -> None:
        """Append one patent's rows and images; refused whole (UnstorablePatent) before anything is written."""
        stored = [s["file"] for s in grant.sheets if images.get((s["file"] or "").upper()) is not None]
        check_storable(grant.patent_id, stored)
        self.tables["patents"].append(grant.patent)
        for row in grant.figures:
            self.tables["figures"].append(row)
        for sheet in grant.sheets:
            data = images.get((sheet["file"] or "").upper())
            if data is not None:
                offset, sha = self._store_image(grant.patent_id, sheet["file"], data)
                sheet.update(image_path=self.image_rel, image_offset=offset, image_size=len(data), image_sha256=sha)
            self.tables["sheets"].append(sheet)

    def add_error(self, member: str, patent_id: str | None, stage: str, reason: str, detail: str) -> None:
        self.tables["errors"].append(
            {
                "week": self.week,
                "source_archive": self.source_archive,
                "member": member,
                "patent_id": patent_id,
                "stage": stage,
                "reason": reason,
                "detail": detail,
            }
        )


def read_table(folder: DataFolder, name: str, columns: list[str] | None = None) -> pa.Table:
    """All weeks of one table (empty with the right schema when none is written yet)."""
    files = folder.list(name, ".parquet")
    schema = TABLES[name]
    if not files:
        return schema.empty_table() if columns is None else schema.empty_table().select(columns)
    parts = []
    for rel in files:
        with folder.open(rel) as f:
            parts.append(pq.read_table(f, columns=columns, schema=schema))
    return pa.concat_tables(parts)


def read_week_table(folder: DataFolder, name: str, week: dt.date, columns: list[str] | None = None) -> pa.Table:
    """One week's file of a table (what a per-week stage reads)."""
    with folder.open(layout.table_file(name, week)) as f:
        return pq.read_table(f, columns=columns, schema=TABLES[name])


def finished_weeks(folder: DataFolder, stage: str) -> list[dt.date]:
    """Weeks whose marker for `stage` exists, oldest first."""
    names = folder.list(layout.stats_dir(stage), ".json")
    return sorted(dt.datetime.strptime(n.rsplit("/", 1)[-1][1:9], "%Y%m%d").date() for n in names)


def read_sheet_image(folder: DataFolder, sheet: dict[str, Any]) -> bytes:
    """The raw TIFF bytes of one `sheets` row, fetched by byte range from the week's images tar."""
    if not sheet.get("image_path"):
        where = f"{sheet.get('patent_id')} sheet {sheet.get('sheet')}"
        raise FileNotFoundError(f"{where}: no image stored ({sheet.get('image_status')})")
    start = int(sheet["image_offset"])
    return folder.read_bytes(sheet["image_path"], start, start + int(sheet["image_size"]))


def week_marker(folder: DataFolder, stage: str, week: dt.date) -> DoneMarker:
    """The done marker of one week of a per-week stage (`_stats/ingest/I20210105.json`, `_stats/render/px512/...`)."""
    return DoneMarker(folder, layout.stats_marker(stage, week))


def read_marker(folder: DataFolder, stage: str, week: dt.date,
                settings: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The stats marker of a finished unit (finished with these settings, when given), or None while it is not."""
    return week_marker(folder, stage, week).done(settings)


def write_marker(folder: DataFolder, stage: str, week: dt.date, stats: dict[str, Any],
                 settings: Mapping[str, Any] | None = None) -> None:
    """Written last, after every output of the unit is in place (with the settings' fingerprint, when given)."""
    week_marker(folder, stage, week).write(stats, settings)

