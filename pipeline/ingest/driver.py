"""The ingest stage driver (Prefect-free): one weekly archive -> the week's four tables, images tar and done marker.

A week is done when its marker was written for the same archive and parser version, so a newer revision of the
week or a new parser ingests it again. The flow lists and downloads archives; this driver parses one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from designclip.pipeline.common.stage import Progress, Scope, UnitResult, no_progress
from designclip.pipeline.ingest.archive import ArchiveError
from designclip.pipeline.ingest.archives import WeeklyArchive, latest_revisions
from designclip.pipeline.ingest.hostile import DEFAULT_LIMITS, MemberLimits
from designclip.pipeline.ingest.parse import PARSER_VERSION
from designclip.pipeline.ingest.sources import (
    STAGE,
    clear_failure,
    downloaded_archives,
    local_path,
    quarantine,
    readable_copy,
    record_failure,
)
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.markers import FINGERPRINT_KEY, DoneMarker
from designclip.storage.tables import WeekWriter, finished_weeks
from designclip.storage.week_outputs import forget_week_downstream

log = logging.getLogger(__name__)

KEEP_RAW = ("none", "all")
"""none: a week's downloaded archive is deleted once its ingest marker is written (its manifest is kept); all: kept."""


@dataclass(frozen=True)
class IngestOptions:
    """The archives a run was given (listed by the source, or the user's own files; raw/ adds the downloaded ones),
    whether downloaded archives are kept after they are ingested, and the caps on one member's size."""

    archives: tuple[WeeklyArchive, ...] = ()
    keep_raw: str = KEEP_RAW[0]
    limits: MemberLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if self.keep_raw not in KEEP_RAW:
            raise ValueError(f"--keep-raw {self.keep_raw!r}: use one of {', '.join(KEEP_RAW)}")


def archive_settings(archive: WeeklyArchive) -> dict[str, Any]:
    """What a finished week must have been ingested with to be skipped: the same archive, the same parser."""
    return {"source_archive": archive.name, "parser_version": PARSER_VERSION}


def week_marker(folder: DataFolder, week: dt.date) -> DoneMarker:
    return DoneMarker(folder, layout.stats_marker(STAGE, week))


def finished(folder: DataFolder, archive: WeeklyArchive) -> dict[str, Any] | None:
    """The week's marker when it was ingested from this archive by this parser, else None."""
    settings = archive_settings(archive)
    marker = week_marker(folder, archive.week)
    record = marker.done(settings)
    if record is None and (old := marker.read()) is not None and FINGERPRINT_KEY not in old:
        record = old if all(old.get(k) == v for k, v in settings.items()) else None  # a marker from before settings
    return record


def ingested(folder: DataFolder, week: dt.date) -> bool:
    """Whether the week's tables are there (from any archive revision): what the later stages read."""
    return week_marker(folder, week).read() is not None


def ingested_weeks(folder: DataFolder, start: dt.date, end: dt.date) -> list[dt.date]:
    """Weeks granted in [start, end] whose tables are there, oldest first."""
    return [w for w in finished_weeks(folder, STAGE) if start <= w <= end]


def _forget_other_revision(folder: DataFolder, archive: WeeklyArchive) -> str | None:
    """When the week was ingested from another archive (a revision such as `_r1`), forget its views and captions
    before the new tables are written (cut from the old sheets, they would be stale); returns the old archive."""
    previous = week_marker(folder, archive.week).read()
    old = (previous or {}).get("source_archive")
    if old is None or old == archive.name:
        return None
    removed = forget_week_downstream(folder, archive.week)
    log.warning("week %s: %s replaces %s; its views and captions (%d paths) will be made again", archive.week,
                archive.name, old, len(removed))
    return old


def _drop_raw(folder: DataFolder, raw_rel: str, given: str | None, options: IngestOptions) -> None:
    """With keep_raw none, delete an ingested week's download (never the user's own file); its manifest stays, so
    `status` and revisions still know it and `rerun --force ingest` downloads it again."""
    if options.keep_raw == "none" and not given and folder.exists(raw_rel):
        folder.remove(raw_rel)


class IngestDriver:
    """Ingest as a `StageDriver` over weekly archives."""

    name = STAGE

    def units(self, folder: DataFolder, scope: Scope, options: IngestOptions) -> list[WeeklyArchive]:
        """The scope's weekly archives: those given, else those downloaded into raw/ (latest revision per week)."""
        given = [a for a in options.archives if scope.start <= a.week <= scope.end]
        downloaded = downloaded_archives(folder, scope.start, scope.end)
        return latest_revisions(list({a.name: a for a in [*downloaded, *given]}.values()))

    def is_done(self, folder: DataFolder, unit: WeeklyArchive, options: IngestOptions) -> bool:
        return finished(folder, unit) is not None

    def run(self, folder: DataFolder, unit: WeeklyArchive, options: IngestOptions = IngestOptions(),
            progress: Progress = no_progress) -> UnitResult:
        """Parse one archive into the week's tables, then write its marker; a finished week is skipped."""
        archive, unit_id = unit, layout.week_id(unit.week)
        record = finished(folder, archive)
        given = local_path(archive)
        raw_rel = layout.raw_archive(archive.week, archive.name)
        if record is not None:
            clear_failure(folder, archive.week)  # a retried download's record is stale now
            _drop_raw(folder, raw_rel, given, options)
            return UnitResult(STAGE, unit_id, True, record, folder.root)
        source = contextlib.nullcontext(given) if given else readable_copy(folder, raw_rel)
        revised = _forget_other_revision(folder, archive)
        try:
            with source as path, WeekWriter(folder, archive.week, archive.name) as sink:
                stats = ingest_archive(path, archive.name, archive.week, sink,
                                       on_progress=lambda s: progress(s.documents_in, None), limits=options.limits)
        except ArchiveError as exc:
            # A bad download is moved aside so the next run fetches it again instead of failing forever.
            moved = None if given else quarantine(folder, archive)
            record_failure(folder, archive, str(exc))
            then = (f"it was moved aside as {moved} and will be downloaded again on the next run"
                    if moved else f"replace {given} with a good copy and ingest it again")
            raise ArchiveError(f"week {archive.week}: {archive.name} is unreadable ({exc}); {then}") from exc
        except Exception as exc:  # not the archive's fault (a full disk, a bug): recorded too, the archive is kept
            with contextlib.suppress(Exception):  # recording must not hide the failure itself
                record_failure(folder, archive, f"{type(exc).__name__}: {exc}")
            raise
        result = stats.to_dict() | {"finished_at": dt.datetime.now(dt.UTC).isoformat()}
        if revised:
            result["revised_from"] = revised
        record = week_marker(folder, archive.week).write(result, archive_settings(archive))
        clear_failure(folder, archive.week)
        _drop_raw(folder, raw_rel, given, options)  # only now: the marker is written
        return UnitResult(STAGE, unit_id, False, record, folder.root)

    def outputs(self, folder: DataFolder, scope: Scope, options: IngestOptions) -> str:
        """The week tables (patents/, figures/, sheets/, errors/, images/) sit at the top of the data root."""
        return folder.root


INGEST = IngestDriver()
