"""The ingest stage for one weekly archive: members -> parsed grants + errors, streamed into a sink."""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

from designclip.pipeline.ingest.archive import (
    IPG_NAME,
    MemberRejected,
    PatentBundle,
    SkippedMembers,
    iter_weekly_tar,
    iter_weekly_zip,
    patent_id_from_member,
)
from designclip.pipeline.ingest.hostile import DEFAULT_LIMITS, MemberLimits
from designclip.pipeline.ingest.ipg import iter_ipg
from designclip.pipeline.ingest.parse import (
    KNOWN_DTD_VERSIONS,
    PARSER_VERSION,
    NotDesignPatent,
    ParsedGrant,
    ParseError,
    declared_dtd_version,
    parse_grant,
)
from designclip.storage.tables import UnstorablePatent
from PIL import Image

log = logging.getLogger(__name__)


class IngestSink(Protocol):
    """Where parsed rows go (storage implements it); the stage never knows paths."""

    def add(self, grant: ParsedGrant, images: dict[str, bytes]) -> None: ...

    def add_error(self, member: str, patent_id: str | None, stage: str, reason: str, detail: str) -> None: ...


@dataclass
class IngestStats:
    """What one week produced; written as the week's done marker."""

    week: str
    source_archive: str
    parser_version: str = PARSER_VERSION
    documents_in: int = 0
    patents: int = 0
    figures: int = 0
    # FIG. rows vs number-of-figures (pipeline/ingest/figure_rows.py): rows added for undescribed FIG.s, typo'd numbers
    # taken by position, described FIG.s beyond the count left out, patents with any of these; views not named.
    figures_undescribed: int = 0
    figures_renumbered: int = 0
    figures_left_out: int = 0
    patents_figure_mismatch: int = 0
    figures_unknown_view: int = 0
    sheets: int = 0
    images: int = 0
    images_missing: int = 0
    images_corrupt: int = 0
    errors: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_not_design: int = 0
    skipped_members: dict[str, int] = field(default_factory=dict)
    # documents declaring a DTD version the parser does not know (parsed with the newest rules), and how many failed
    dtd_unknown: dict[str, int] = field(default_factory=dict)
    dtd_unknown_failed: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _sheet_image_status(sheet: dict, images: dict[str, bytes]) -> bytes | None:
    """Fill width/height from the TIFF header; mark missing or unreadable sheets instead of failing the patent."""
    data = images.get((sheet["file"] or "").upper())
    if data is None:
        sheet.update(image_status="missing", width_px=None, height_px=None)
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            sheet.update(image_status="ok", width_px=im.width, height_px=im.height)
        return data
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad images
        sheet.update(image_status=f"corrupt: {type(exc).__name__}", width_px=None, height_px=None)
        return None


def _count_figure_check(stats: IngestStats, grant: ParsedGrant) -> None:
    """A FIG. list that disagrees with number-of-figures is counted here, never an `errors` row."""
    stats.figures_unknown_view += sum(f["view"] == "unknown" for f in grant.figures)
    check = grant.figure_check
    if check is None or not check.mismatch:
        return
    stats.patents_figure_mismatch += 1
    stats.figures_undescribed += len(check.undescribed)
    stats.figures_renumbered += len(check.renumbered)
    stats.figures_left_out += len(check.left_out)


def iter_archive(path: str, archive_name: str, skipped: SkippedMembers,
                 limits: MemberLimits = DEFAULT_LIMITS) -> Iterator[PatentBundle | MemberRejected]:
    """Dispatch on the archive's kind: weekly tar, weekly zip, or ipg XML."""
    if IPG_NAME.match(archive_name):
        yield from iter_ipg(path, limits)
    elif archive_name.lower().endswith(".zip"):
        yield from iter_weekly_zip(path, skipped, limits)
    else:
        with open(path, "rb") as f:
            yield from iter_weekly_tar(f, skipped, limits)


def _parse(item: PatentBundle, archive_name: str, week: dt.date, stats: IngestStats,
           reject: Callable[..., None]) -> ParsedGrant | None:
    """The grant's rows, or None: a non-design grant is counted as skipped, a bad document becomes an error row."""
    dtd = declared_dtd_version(item.xml)
    unknown = dtd is not None and dtd not in KNOWN_DTD_VERSIONS
    if unknown and dtd not in stats.dtd_unknown:
        log.warning("week %s: %s declares dtd-version %s, which this parser does not know (%s); parsing it with "
                    "the %s rules: check its patents, and update the parser if fields are missing",
                    week, archive_name, dtd, ", ".join(KNOWN_DTD_VERSIONS), KNOWN_DTD_VERSIONS[-1])
    if unknown:
        stats.dtd_unknown[dtd] = stats.dtd_unknown.get(dtd, 0) + 1
    try:
        return parse_grant(item.xml, source_archive=archive_name, source_member=item.member, week=week)
    except NotDesignPatent:
        stats.documents_in -= 1
        stats.skipped_not_design += 1
    except ParseError as exc:
        stats.dtd_unknown_failed += unknown
        reason = "malformed_xml" if "XML" in str(exc) else "invalid_grant"
        reject(item.member, patent_id_from_member(item.member), "parse", reason, str(exc))
    except Exception as exc:  # noqa: BLE001 - hostile XML must cost one error row, never the week
        stats.dtd_unknown_failed += unknown
        reject(item.member, patent_id_from_member(item.member), "parse", "invalid_grant",
               f"{item.member}: the parser failed on it ({type(exc).__name__}: {exc})")
    return None


def _sheet_images(grant: ParsedGrant, item: PatentBundle, is_ipg: bool) -> tuple[dict[str, bytes], int, int]:
    """The readable TIFFs of the grant's sheets by file name, and how many were missing and unreadable."""
    kept: dict[str, bytes] = {}
    missing = corrupt = 0
    for sheet in grant.sheets:
        if is_ipg:
            sheet.update(image_status="not_in_source", width_px=None, height_px=None)
            continue
        data = _sheet_image_status(sheet, item.images)
        if data is not None:
            kept[sheet["file"].upper()] = data
        elif sheet["image_status"] == "missing":
            missing += 1
        else:
            corrupt += 1
    return kept, missing, corrupt


def ingest_archive(
    path: str,
    archive_name: str,
    week: dt.date,
    sink: IngestSink,
    on_progress: Callable[[IngestStats], None] | None = None,
    limits: MemberLimits = DEFAULT_LIMITS,
) -> IngestStats:
    """Parse every design patent of one archive into `sink`; bad members become error rows, never exceptions, so
    patents in = patent rows + error rows; `limits` caps what one member may inflate to."""
    started = time.monotonic()
    stats = IngestStats(week=week.isoformat(), source_archive=archive_name)
    reasons: Counter[str] = Counter()
    skipped = SkippedMembers()
    is_ipg = IPG_NAME.match(archive_name) is not None

    def reject(member: str, patent_id: str | None, stage: str, reason: str, detail: str) -> None:
        stats.errors += 1
        reasons[reason] += 1
        sink.add_error(member, patent_id, stage, reason, detail)

    for item in iter_archive(path, archive_name, skipped, limits):
        stats.documents_in += 1
        if isinstance(item, MemberRejected):
            reject(item.member, item.patent_id, "member", item.reason, item.detail)
            continue
        grant = _parse(item, archive_name, week, stats, reject)
        if grant is None:
            continue
        kept, missing, corrupt = _sheet_images(grant, item, is_ipg)
        if not is_ipg and not kept:
            reject(item.member, grant.patent_id, "images", "no_drawings",
                   f"{item.member}: no drawing to render ({len(grant.sheets)} sheets listed, {missing} not in its "
                   f"ZIP, {corrupt} unreadable)")
            continue
        try:
            sink.add(grant, kept)
        except UnstorablePatent as exc:
            reject(item.member, patent_id_from_member(item.member), "store", exc.reason, f"{item.member}: {exc}")
            continue
        stats.patents += 1
        stats.figures += len(grant.figures)
        _count_figure_check(stats, grant)
        stats.sheets += len(grant.sheets)
        stats.images += len(kept)
        stats.images_missing += missing
        stats.images_corrupt += corrupt
        if on_progress and stats.documents_in % 100 == 0:
            on_progress(stats)
    stats.errors_by_reason = dict(reasons)
    stats.skipped_members = dict(skipped.by_folder)
    stats.duration_s = round(time.monotonic() - started, 3)
    return stats
