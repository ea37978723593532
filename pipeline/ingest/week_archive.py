"""The ingest stage for one weekly archive: members -> parsed grants + errors, streamed into a sink."""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

from designclip.pipeline.ingest.archive import (
    IPG_NAME,
    ArchiveError,
    MemberRejected,
    PatentBundle,
    SkippedMembers,
    iter_weekly_tar,
    iter_weekly_zip,
    patent_id_from_member,
)
from designclip.pipeline.ingest.parse import (
    KNOWN_DTD_VERSIONS,
    PARSER_VERSION,
    NotDesignPatent,
    ParsedGrant,
    ParseError,
    declared_dtd_version,
    parse_grant,
    split_concatenated_xml,
)
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


def _iter_ipg(path: str) -> Iterator[PatentBundle]:
    """The no-images weekly form: documents concatenated in one XML (optionally zipped)."""
    if path.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            name = next((n for n in zf.namelist() if n.lower().endswith(".xml")), None)
            if name is None:
                raise ArchiveError(f"{path} holds no ipg XML")
            with zf.open(name) as f:
                yield from _ipg_docs(f, name)
        return
    with open(path, "rb") as f:
        yield from _ipg_docs(f, path.rsplit("/", 1)[-1])


def _ipg_docs(lines: Iterable[bytes], name: str) -> Iterator[PatentBundle]:
    for i, doc in enumerate(split_concatenated_xml(lines)):
        yield PatentBundle(f"{name}#doc{i + 1}", doc)


def iter_archive(path: str, archive_name: str, skipped: SkippedMembers) -> Iterator[PatentBundle | MemberRejected]:
    """Dispatch on the archive's kind: weekly tar, weekly zip, or ipg XML."""
    if IPG_NAME.match(archive_name):
        yield from _iter_ipg(path)
    elif archive_name.lower().endswith(".zip"):
        yield from iter_weekly_zip(path, skipped)
    else:
        with open(path, "rb") as f:
            yield from iter_weekly_tar(f, skipped)


def ingest_archive(
    path: str,
    archive_name: str,
    week: dt.date,
    sink: IngestSink,
    on_progress: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Parse every design patent of one archive into `sink`; bad members become error rows, never exceptions."""
    started = time.monotonic()
    stats = IngestStats(week=week.isoformat(), source_archive=archive_name)
    reasons: Counter[str] = Counter()
    skipped = SkippedMembers()
    is_ipg = IPG_NAME.match(archive_name) is not None

    def reject(member: str, patent_id: str | None, stage: str, reason: str, detail: str) -> None:
        stats.errors += 1
        reasons[reason] += 1
        sink.add_error(member, patent_id, stage, reason, detail)

    for item in iter_archive(path, archive_name, skipped):
        stats.documents_in += 1
        if isinstance(item, MemberRejected):
            reject(item.member, item.patent_id, "member", item.reason, item.detail)
            continue
        dtd = declared_dtd_version(item.xml)
        unknown = dtd is not None and dtd not in KNOWN_DTD_VERSIONS
        if unknown and dtd not in stats.dtd_unknown:
            log.warning("week %s: %s declares dtd-version %s, which this parser does not know (%s); parsing it with "
                        "the %s rules: check its patents, and update the parser if fields are missing",
                        week, archive_name, dtd, ", ".join(KNOWN_DTD_VERSIONS), KNOWN_DTD_VERSIONS[-1])
        if unknown:
            stats.dtd_unknown[dtd] = stats.dtd_unknown.get(dtd, 0) + 1
        try:
            grant = parse_grant(item.xml, source_archive=archive_name, source_member=item.member, week=week)
        except NotDesignPatent:
            stats.documents_in -= 1
            stats.skipped_not_design += 1
            continue
        except ParseError as exc:
            stats.dtd_unknown_failed += unknown
            reason = "malformed_xml" if "XML" in str(exc) else "invalid_grant"
            reject(item.member, patent_id_from_member(item.member), "parse", reason, str(exc))
            continue
        kept: dict[str, bytes] = {}
        for sheet in grant.sheets:
            if is_ipg:
                sheet.update(image_status="not_in_source", width_px=None, height_px=None)
                continue
            data = _sheet_image_status(sheet, item.images)
            if data is not None:
                kept[sheet["file"].upper()] = data
            elif sheet["image_status"] == "missing":
                stats.images_missing += 1
            else:
                stats.images_corrupt += 1
        sink.add(grant, kept)
        stats.patents += 1
        stats.figures += len(grant.figures)
        _count_figure_check(stats, grant)
        stats.sheets += len(grant.sheets)
        stats.images += len(kept)
        if on_progress and stats.documents_in % 100 == 0:
            on_progress(stats)
    stats.errors_by_reason = dict(reasons)
    stats.skipped_members = dict(skipped.by_folder)
    stats.duration_s = round(time.monotonic() - started, 3)
    return stats
