"""Weekly archives for tests, built from the real fixture patents, with the faults real archives have."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from designclip.pipeline.ingest.mirror import build_patent_zip, build_weekly_tar

from tests.conftest import patent_folder


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def malformed_xml_zip(folder: Path) -> bytes:
    """A per-patent ZIP whose XML is cut in half (not well-formed)."""
    xml = next(folder.glob("*.XML"))
    return zip_bytes({f"{folder.name}/{xml.name}": xml.read_bytes()[:3000]})


def non_design_zip(folder: Path) -> bytes:
    """A real grant rewritten as a utility patent: skipped and counted, not an error."""
    xml = next(folder.glob("*.XML"))
    text = xml.read_bytes().replace(b"<kind>S1</kind>", b"<kind>B2</kind>", 1)
    text = text.replace(b'appl-type="design"', b'appl-type="utility"', 1)
    return zip_bytes({f"{folder.name}/{xml.name}": text})


def faulty_week(out: Path, week: dt.date = dt.date(2021, 2, 9)) -> Path:
    """A week with 2 good patents and one of each fault: corrupt ZIP, malformed XML, zip-slip, utility, UTIL/."""
    top = f"I{week:%Y%m%d}"
    good = [patent_folder("USD0909824"), patent_folder("USD0910059")]
    spoon = patent_folder("USD0909824")
    extra = {
        f"{top}/DESIGN/USD0999001-{week:%Y%m%d}.ZIP": b"PK\x03\x04 this is not really a zip",
        f"{top}/DESIGN/USD0999002-{week:%Y%m%d}.ZIP": malformed_xml_zip(spoon),
        f"{top}/DESIGN/USD0999003-{week:%Y%m%d}.ZIP": zip_bytes({"../../evil.XML": b"<x/>"}),
        f"{top}/DESIGN/../../USD0999004-{week:%Y%m%d}.ZIP": build_patent_zip(spoon),
        f"{top}/DESIGN/USD0999005-{week:%Y%m%d}.ZIP": non_design_zip(spoon),
        f"{top}/UTIL0123/US11000001-{week:%Y%m%d}.ZIP": b"utility patents are not read",
        f"{top}-SUPP/SUPP.txt": b"supplemental",
    }
    return build_weekly_tar(week, good, out, extra=extra)


def ingest_sample_weeks(data_root: Path, weeks: list[dt.date], work: Path) -> None:
    """Ingest some weeks of the bundled sample into `data_root` (no Prefect): real tars through the real parser."""
    from designclip.pipeline.ingest.archives import WeeklyArchive
    from designclip.pipeline.ingest.driver import INGEST
    from designclip.pipeline.ingest.mirror import group_by_week
    from designclip.storage.folder import DataFolder

    from tests.conftest import SAMPLE

    by_week = group_by_week(SAMPLE)
    for week in weeks:
        tar = build_weekly_tar(week, by_week[week], work / f"I{week:%Y%m%d}.tar")
        archive = WeeklyArchive(week=week, name=tar.name, url=tar.as_uri(), source="local")
        INGEST.run(DataFolder(data_root), archive)
