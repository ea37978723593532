"""Parse one USPTO grant XML document (DTD v4.2-v4.7) into patent, figure and sheet rows."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from designclip.pipeline.common.classes import parse_locarno, parse_uspc
from designclip.pipeline.ingest.figure_rows import FigureCheck, figure_table
from designclip.pipeline.ingest.figures import broken_lines_statement
from lxml import etree

PARSER_VERSION = "2"
KNOWN_DTD_VERSIONS = ("v4.2", "v4.3", "v4.4", "v4.5", "v4.6", "v4.7")
"""The `us-patent-grant` DTD versions these rules were written for; a newer one is parsed with the v4.7 rules."""
_DTD_ATTRIBUTE = re.compile(rb'dtd-version="([^" ]+)')


def declared_dtd_version(xml: bytes) -> str | None:
    """The `dtd-version` a grant document declares (read from its head, so even a document that fails to parse)."""
    m = _DTD_ATTRIBUTE.search(xml[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


class ParseError(ValueError):
    """The document is not well-formed XML or lacks what every grant has."""


class NotDesignPatent(Exception):
    """A well-formed grant that is not a design patent: skipped and counted, not an error."""


def _new_parser() -> etree.XMLParser:
    """No DTD loading, no entity expansion, no network: grant XML is data, never instructions."""
    return etree.XMLParser(
        load_dtd=False,
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        remove_blank_text=False,
        huge_tree=False,
    )


_PARSER = _new_parser()


@dataclass
class ParsedGrant:
    """Rows for the `patents`, `figures` and `sheets` tables from one document."""

    patent: dict[str, Any]
    figures: list[dict[str, Any]] = field(default_factory=list)
    sheets: list[dict[str, Any]] = field(default_factory=list)
    figure_check: FigureCheck | None = None

    @property
    def patent_id(self) -> str:
        return self.patent["patent_id"]


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    text = " ".join("".join(el.itertext()).split())
    return text or None


def _date(value: str | None) -> dt.date | None:
    if not value or len(value) != 8 or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _party(el: etree._Element) -> dict[str, str | None]:
    book = el.find("addressbook")
    src = book if book is not None else el
    org = src.findtext("orgname")
    name = org or " ".join(p for p in (src.findtext("first-name"), src.findtext("last-name")) if p) or None
    addr = src.find("address")
    get = (lambda tag: addr.findtext(tag)) if addr is not None else (lambda tag: None)
    return {"name": name, "city": get("city"), "state": get("state"), "country": get("country")}


def _parties(biblio: etree._Element) -> tuple[list[dict], list[dict]]:
    """Inventors and applicants across DTDs: v4.3+ `us-parties`, v4.2 `parties` with applicant-inventors."""
    parties = biblio.find("us-parties")
    if parties is None:
        parties = biblio.find("parties")
    if parties is None:
        return [], []
    applicants = parties.findall("us-applicants/us-applicant") or parties.findall("applicants/applicant")
    inventors = parties.findall("inventors/inventor")
    if not inventors:
        inventors = [a for a in applicants if a.get("app-type") == "applicant-inventor"]
    return [_party(i) for i in inventors], [_party(a) for a in applicants]


def _xp(path: str) -> etree.XPath:
    return etree.XPath(path, smart_strings=False)


_CITATION_COLUMNS = {
    name: _xp(f"*/patcit/document-id/{tag}/text()")
    for name, tag in (("country", "country"), ("doc_number", "doc-number"), ("kind", "kind"), ("name", "name"),
                      ("date", "date"))
}
_CITATION_CATEGORY = _xp("*[patcit]/category/text()")
_PATCIT_COUNT = _xp("count(*/patcit)")
_PATCIT_CITATIONS = _xp("*[patcit]")
_NPL_TEXT = _xp("*/nplcit/othercit")


def _citations(biblio: etree._Element) -> tuple[list[dict], list[str]]:
    """Cited patents and other citations (~100 per design grant): column-wise in C, per-row only if ragged."""
    refs = biblio.find("us-references-cited")
    if refs is None:
        refs = biblio.find("references-cited")
    if refs is None:
        return [], []
    n = int(_PATCIT_COUNT(refs))
    columns = {name: xp(refs) for name, xp in _CITATION_COLUMNS.items()}
    columns["category"] = _CITATION_CATEGORY(refs)
    ragged = [name for name, col in columns.items() if len(col) != n]
    if ragged:
        # Foreign citations often lack kind/name: only those columns are read again, row by row.
        cits = _PATCIT_CITATIONS(refs)
        for name in ragged:
            columns[name] = [_citation_field(cit, name) for cit in cits]
    patents = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    other = [t for t in (_text(el) for el in _NPL_TEXT(refs)) if t]
    return patents, other


def _citation_field(cit: etree._Element, name: str) -> str | None:
    """One field of one citation, None where it is absent (keeps every column aligned)."""
    if name == "category":
        return cit.findtext("category")
    return cit.findtext(f"patcit/document-id/{name.replace('_', '-')}")


def _sheet_number(file: str, num: str | None) -> int | None:
    m = re.search(r"-D(\d+)\.TIF+$", file, re.IGNORECASE)
    return int(m.group(1)) if m else _int(num)


def _mm(value: str | None) -> float | None:
    try:
        return float(value[:-2]) if value and value.endswith("mm") else None
    except ValueError:
        return None


def parse_grant(
    xml: bytes, *, source_archive: str = "", source_member: str = "", week: dt.date | None = None
) -> ParsedGrant:
    """Rows of one grant document; raises ParseError (bad data) or NotDesignPatent (skip)."""
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"malformed XML: {exc}") from exc
    if root.tag != "us-patent-grant":
        raise ParseError(f"root element is <{root.tag}>, expected <us-patent-grant>")
    biblio = root.find("us-bibliographic-data-grant")
    if biblio is None:
        raise ParseError("no <us-bibliographic-data-grant>")
    pub = biblio.find("publication-reference/document-id")
    app = biblio.find("application-reference")
    if pub is None or app is None:
        raise ParseError("no publication or application reference")
    kind = pub.findtext("kind") or ""
    appl_type = app.get("appl-type") or ""
    doc_number = (pub.findtext("doc-number") or "").strip()
    if not kind.startswith("S") or appl_type != "design":
        raise NotDesignPatent(f"{doc_number or '?'} is kind {kind or '?'} ({appl_type or 'no appl-type'})")
    if not doc_number:
        raise ParseError("empty doc-number")
    patent_id = f"{pub.findtext('country') or 'US'}{doc_number}"
    grant_date = _date(pub.findtext("date"))
    if grant_date is None:
        raise ParseError(f"{patent_id}: grant date missing or invalid")

    loc_el = biblio.find("classification-locarno")
    locarno = parse_locarno(loc_el.findtext("main-classification") or "") if loc_el is not None else None
    nat = biblio.find("classification-national")
    main_uspc = parse_uspc(nat.findtext("main-classification") or "") if nat is not None else None
    further = [parse_uspc(f.text or "") for f in nat.findall("further-classification")] if nat is not None else []
    inventors, applicants = _parties(biblio)
    cited, cited_other = _citations(biblio)
    assignees = [_party(a) for a in biblio.findall("assignees/assignee")]
    if not assignees:
        parties = biblio.find("us-parties")
        assignees = [_party(a) for a in (parties.findall("assignees/assignee") if parties is not None else [])]
    examiner = biblio.find("examiners/primary-examiner")
    figs_el = biblio.find("figures")

    paragraphs = ["".join(p.itertext()) for p in root.iterfind("description/description-of-drawings/p")]
    num_figures = _int(figs_el.findtext("number-of-figures")) if figs_el is not None else None
    table = figure_table(paragraphs, num_figures)
    statements = table.statements
    claims = [_text(c) for c in root.iterfind("claims/claim")]
    app_doc = app.find("document-id")
    dtd = (root.get("dtd-version") or "").split(" ")[0] or None

    patent = {
        "patent_id": patent_id,
        "doc_number": doc_number,
        "kind": kind,
        "grant_date": grant_date,
        "application_number": app_doc.findtext("doc-number") if app_doc is not None else None,
        "application_date": _date(app_doc.findtext("date")) if app_doc is not None else None,
        "application_type": appl_type,
        "title": _text(biblio.find("invention-title")),
        "claim": "\n".join(c for c in claims if c) or None,
        "locarno_edition": _int(loc_el.findtext("edition")) if loc_el is not None else None,
        "locarno": locarno[0] if locarno else None,
        "locarno_class": locarno[1] if locarno else None,
        "uspc": str(main_uspc) if main_uspc else None,
        "uspc_class": main_uspc.us_class if main_uspc else None,
        "uspc_further": [str(f) for f in further if f],
        "num_sheets": _int(figs_el.findtext("number-of-drawing-sheets")) if figs_el is not None else None,
        "num_figures": num_figures,
        "num_claims": _int(biblio.findtext("number-of-claims")),
        "term_years": _int(biblio.findtext("us-term-of-grant/length-of-grant")),
        "dtd_version": dtd,
        "inventors": inventors,
        "applicants": applicants,
        "assignees": assignees,
        "primary_examiner": _party(examiner)["name"] if examiner is not None else None,
        "cited_patents": cited,
        "cited_other": cited_other,
        "broken_lines": broken_lines_statement(statements),
        "drawing_statements": statements,
        "source_archive": source_archive,
        "source_member": source_member,
        "week": week,
    }
    figure_rows = [
        {
            "patent_id": patent_id,
            "fig": f.fig,
            "fig_index": i,
            "view": f.view.view,
            "view_direction": f.view.direction or None,
            "view_type": f.view.type or None,
            "description": f.description,
            "image_index": f.image_index,
            "view_inherited_from": f.view_inherited_from,
            "figure_flag": f.figure_flag,
            "week": week,
        }
        for i, f in enumerate(table.rows)
    ]
    sheet_rows = []
    for img in root.iterfind("drawings/figure/img"):
        file = img.get("file") or ""
        sheet_rows.append(
            {
                "patent_id": patent_id,
                "sheet": _sheet_number(file, img.getparent().get("num")),
                "file": file,
                "orientation": img.get("orientation") or "portrait",
                "width_mm": _mm(img.get("wi")),
                "height_mm": _mm(img.get("he")),
                "week": week,
            }
        )
    return ParsedGrant(patent, figure_rows, sheet_rows, table.check)
