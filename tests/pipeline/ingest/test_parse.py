"""parse_grant against the 30 real 2021 USPTO design patents; expected values were read by hand from the XML."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from designclip.pipeline.ingest.parse import NotDesignPatent, ParsedGrant, ParseError, parse_grant

SAMPLE = Path(__file__).resolve().parents[3] / "designclip" / "sample" / "patents"
FIXTURE_README = Path("/work/shared/fixtures/uspto/README.md")

# folder: (Locarno, US class as printed, sheets, FIG.s, TIFFs, landscape sheets), from the fixtures README table
# (its "US class" column is the raw fixed-width code; the second value here is that code read by hand).
FACTS: dict[str, tuple[str, str, int, int, int, int]] = {
    "USD0907292-20210105": ("2803", "D28/47", 8, 8, 9, 2),
    "USD0907293-20210105": ("2803", "D28/47", 6, 8, 7, 6),
    "USD0909824-20210209": ("0703", "D7/654", 3, 7, 4, 0),
    "USD0910059-20210209": ("1404", "D14/487", 1, 1, 2, 1),
    "USD0911449-20210223": ("2101", "D21/335", 67, 93, 68, 4),
    "USD0913174-20210316": ("1403", "D12/192", 8, 8, 9, 0),
    "USD0913175-20210316": ("1216", "D12/193", 3, 6, 4, 0),
    "USD0913312-20210316": ("1404", "D14/486", 2, 2, 3, 0),
    "USD0913313-20210316": ("1404", "D14/487", 2, 2, 3, 0),
    "USD0913943-20210323": ("1303", "D13/133", 8, 8, 9, 0),
    "USD0915080-20210406": ("0505", "D5/32", 2, 2, 3, 2),
    "USD0915935-20210413": ("0207", "D11/231", 7, 7, 8, 0),
    "USD0917866-20210504": ("0204", "D2/973", 3, 3, 4, 3),
    "USD0918440-20210504": ("2603", "D26/25", 7, 7, 8, 0),
    "USD0919622-20210518": ("1402", "D14/385", 8, 8, 9, 0),
    "USD0919623-20210518": ("1402", "D14/391", 5, 7, 6, 5),
    "USD0923318-20210629": ("0204", "D2/972", 5, 5, 6, 5),
    "USD0925503-20210720": ("1401", "D14/225", 8, 8, 9, 0),
    "USD0927652-20210810": ("2301", "D23/262", 6, 6, 7, 0),
    "USD0928144-20210817": ("1402", "D14/341", 5, 7, 6, 0),
    "USD0928323-20210817": ("2402", "D24/156", 7, 7, 8, 0),
    "USD0929296-20210831": ("1216", "D12/209", 2, 2, 3, 0),
    "USD0929297-20210831": ("1216", "D12/209", 2, 2, 3, 0),
    "USD0930095-20210907": ("2102", "D21/743", 14, 16, 15, 0),
    "USD0930528-20210914": ("1216", "D12/169", 7, 7, 8, 7),
    "USD0930529-20210914": ("1216", "D12/169", 7, 7, 8, 5),
    "USD0934827-20211102": ("1403", "D14/126", 7, 9, 8, 1),
    "USD0937859-20211207": ("1404", "D14/486", 1, 1, 2, 0),
    "USD0938702-20211221": ("0204", "D2/947", 6, 6, 7, 6),
    "USD0939223-20211228": ("0505", "D5/46", 2, 2, 3, 0),
}


def folder(prefix: str) -> Path:
    return next(p for p in SAMPLE.iterdir() if p.name.startswith(prefix))


def xml_bytes(prefix: str) -> bytes:
    d = folder(prefix)
    return (d / f"{d.name}.XML").read_bytes()


def parse(prefix: str) -> ParsedGrant:
    return parse_grant(xml_bytes(prefix))


def fig(grant: ParsedGrant, name: str) -> dict:
    return next(f for f in grant.figures if f["fig"] == name)


# --- the fixture table itself ---------------------------------------------------------------------------------


def test_fact_table_covers_every_fixture_folder() -> None:
    assert sorted(p.name for p in SAMPLE.iterdir() if p.is_dir()) == sorted(FACTS)


@pytest.mark.skipif(not FIXTURE_README.exists(), reason="shared fixtures README not mounted")
def test_fact_table_matches_fixture_readme() -> None:
    rows = re.findall(
        r"^\| (USD\d+-\d+) \| (\d{4}) \| (D[ 0-9]{5}) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|",
        FIXTURE_README.read_text(),
        re.M,
    )
    assert len(rows) == 30
    for name, loc, us_raw, sheets, figs, tiffs, landscape in rows:
        assert FACTS[name][0] == loc
        assert FACTS[name][1] == f"D{us_raw[1:3].strip()}/{us_raw[3:].strip()}"  # 'D 7654' = D7/654
        assert FACTS[name][2:] == (int(sheets), int(figs), int(tiffs), int(landscape))


# --- USD0909824 "Sport spoon", every field --------------------------------------------------------------------


def test_spoon_bibliographic_fields() -> None:
    p = parse("USD0909824").patent
    assert p["patent_id"] == "USD0909824"
    assert p["doc_number"] == "D0909824"
    assert p["kind"] == "S1"
    assert p["grant_date"] == dt.date(2021, 2, 9)
    assert p["application_number"] == "29740061"
    assert p["application_date"] == dt.date(2020, 6, 30)
    assert p["application_type"] == "design"
    assert p["title"] == "Sport spoon"
    assert p["claim"] == "The ornamental design for a sport spoon, as shown and described."
    assert p["num_claims"] == 1
    assert p["term_years"] == 15
    assert p["dtd_version"] == "v4.5"
    assert p["primary_examiner"] == "Ricky Pham"


def test_spoon_classifications() -> None:
    p = parse("USD0909824").patent
    assert p["locarno_edition"] == 13
    assert p["locarno"] == "07-03"
    assert p["locarno_class"] == "07"
    assert p["uspc"] == "D7/654"
    assert p["uspc_class"] == "D7"
    assert "D7/653" in p["uspc_further"]
    assert p["uspc_further"] == ["D7/401.2", "D7/653"]  # " D74012" and " D7653" (class pad dropped)
    assert p["num_sheets"] == 3
    assert p["num_figures"] == 7


def test_spoon_parties_and_citations() -> None:
    p = parse("USD0909824").patent
    assert p["inventors"] == [{"name": "Christopher Lee Tillman", "city": "Mableton", "state": "GA", "country": "US"}]
    assert p["applicants"] == p["inventors"]
    assert p["assignees"] == []
    cited = p["cited_patents"]
    assert len(cited) == 8
    assert cited[0] == {
        "country": "US",
        "doc_number": "D151600",
        "kind": "S",
        "name": "Colm",
        "date": "19481100",
        "category": "cited by examiner",
    }
    assert [c["doc_number"] for c in cited][-1] == "D889214"
    assert len(p["cited_other"]) == 1
    assert p["cited_other"][0].startswith("BSETONZON 6pcs Stainless Steel")
    assert "amazon.com" in p["cited_other"][0].lower()


def test_spoon_drawing_description() -> None:
    g = parse("USD0909824")
    assert g.patent["broken_lines"].startswith("The broken lines shown in FIGS. 1-7")
    assert g.patent["broken_lines"].endswith("such as ball seams, transitions, shoe and sock lines.")
    assert g.patent["drawing_statements"] == [g.patent["broken_lines"]]
    assert [f["fig"] for f in g.figures] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [f["fig_index"] for f in g.figures] == list(range(7))
    assert [f["view"] for f in g.figures] == ["perspective", "top", "bottom", "front", "rear", "left", "right"]
    assert {f["patent_id"] for f in g.figures} == {"USD0909824"}
    assert fig(g, "2")["description"] == "a top view thereof"
    assert fig(g, "3")["description"] == "a bottom thereof"  # sic: "FIG. 3 is a bottom thereof;"
    assert fig(g, "6")["description"] == "a left side view thereof"  # "; and," dropped
    assert fig(g, "7")["description"] == "a right side view thereof"
    assert fig(g, "1")["description"].startswith("a perspective view of the soccer sport spoon")
    assert fig(g, "1")["view_type"] == "perspective"
    assert fig(g, "1")["view_direction"] is None


def test_spoon_sheets() -> None:
    g = parse("USD0909824")
    assert [s["sheet"] for s in g.sheets] == [0, 1, 2, 3]
    assert [s["file"] for s in g.sheets] == [f"USD0909824-20210209-D0000{i}.TIF" for i in range(4)]
    assert {s["orientation"] for s in g.sheets} == {"portrait"}
    assert g.sheets[0]["width_mm"] == pytest.approx(152.48)
    assert g.sheets[0]["height_mm"] == pytest.approx(53.17)
    assert g.sheets[3]["height_mm"] == pytest.approx(167.56)
    for s in g.sheets:
        assert (folder("USD0909824") / s["file"]).is_file()


def test_provenance_passes_through() -> None:
    week = dt.date(2021, 2, 9)
    g = parse_grant(xml_bytes("USD0909824"), source_archive="I20210209.tar", source_member="x.ZIP", week=week)
    assert g.patent["source_archive"] == "I20210209.tar"
    assert g.patent["source_member"] == "x.ZIP"
    assert g.patent["week"] == week
    assert {f["week"] for f in g.figures} == {week}
    assert {s["week"] for s in g.sheets} == {week}
    assert g.patent_id == "USD0909824"


# --- other real patents with unusual drawing descriptions ----------------------------------------------------


def test_many_figs_on_few_sheets() -> None:
    g = parse("USD0911449")
    p = g.patent
    assert p["title"] == "Game housing and game pieces"
    assert (p["num_sheets"], p["num_figures"]) == (67, 93)
    assert len(g.figures) == 93
    assert [f["fig"] for f in g.figures] == [str(i) for i in range(1, 94)]
    assert len(g.sheets) == 68
    assert [s["sheet"] for s in g.sheets] == list(range(68))
    assert [s["sheet"] for s in g.sheets if s["orientation"] == "landscape"] == [1, 3, 66, 67]
    # "FIG. 2 is a front elevational of the game housing of FIG. 1;"
    assert fig(g, "2")["view"] == "front"
    assert fig(g, "2")["view_type"] == "elevation"
    assert fig(g, "1")["view"] == "top perspective"
    assert fig(g, "4")["view"] == "left"
    assert fig(g, "7")["view"] == "bottom"
    assert fig(g, "92")["description"] == (
        "a top perspective view of the game housing component of FIG. 1, shown in a closed configuration"
    )
    assert fig(g, "92")["view"] == "top perspective"
    assert fig(g, "93")["description"].endswith("shown in an open configuration")
    assert [i["name"] for i in p["inventors"]] == ["Raf Peeters", "Leighton Meredith Rees"]
    assert [i["city"] for i in p["inventors"]] == ["Lier", "Cirencester"]
    assert p["assignees"][0]["name"] == "SMART N.V."
    assert p["broken_lines"].startswith("The evenly-dashed broken lines in the drawings")


def test_hague_reproductions() -> None:
    g = parse("USD0913174")
    assert g.patent["title"] == "Display screen for automobile"
    assert [f["fig"] for f in g.figures] == [f"1.{i}" for i in range(1, 9)]
    views = [f["view"] for f in g.figures]
    # The list says "1.1 : Perspective", "1.8 : Reference view 2"; the statement paragraph says more
    # ("reproduction 1.1 is a front perspective view ...; reproduction 1.8 is a reference view showing the use
    # state ..."), and where it says more it describes the FIG.
    assert views == ["front perspective", "front", "rear", "left", "top", "bottom", "reference", "in-use"]
    assert fig(g, "1.1")["description"] == "a front perspective view of the display screen for automobile"
    assert fig(g, "1.7")["description"] == "Reference view"
    assert fig(g, "1.8")["description"] == (
        "a reference view showing the use state in which the claimed design has been installed on the back of the "
        "seat on an automobile and forms no part of the claimed design"
    )
    assert [f["figure_flag"] for f in g.figures] == [None] * 8
    # "1. Display screen for automobile" is the product line, not a FIG.
    assert "1. Display screen for automobile" in g.patent["drawing_statements"]
    assert g.patent["broken_lines"].startswith("The broken lines depict portions of display screen for automobile")


def test_hague_reproductions_without_statements() -> None:
    g = parse("USD0915935")
    assert [f["fig"] for f in g.figures] == [f"1.{i}" for i in range(1, 8)]
    assert [f["view"] for f in g.figures] == ["perspective", "front", "rear", "right", "left", "top", "bottom"]
    assert g.patent["broken_lines"] is None


def test_the_figure() -> None:
    g = parse("USD0910059")
    assert len(g.figures) == 1
    f = g.figures[0]
    assert f["fig"] == "1"
    assert f["view"] == "front"
    assert f["description"].startswith("a front view of a display screen or portion thereof")
    assert g.patent["broken_lines"].startswith("The broken lines illustrate the display screen")
    assert [s["orientation"] for s in g.sheets] == ["portrait", "landscape"]


def test_fig_without_verb() -> None:
    g = parse("USD0928323")  # "FIG. 4 a perspective view thereof." (no "is")
    assert g.patent["title"] == "Dental abutment"
    assert [f["fig"] for f in g.figures] == [str(i) for i in range(1, 8)]
    assert fig(g, "4")["description"] == "a perspective view thereof"
    assert fig(g, "4")["view"] == "perspective"
    assert fig(g, "6")["view"] == "front"  # "FIG. 6 is a front thereof; and,"
    assert g.patent["drawing_statements"] == []
    assert g.patent["broken_lines"] is None


def test_second_embodiment_statement_kept() -> None:
    g = parse("USD0934827")
    assert len(g.figures) == 9
    assert [f["fig"] for f in g.figures] == [str(i) for i in range(1, 10)]
    assert fig(g, "8")["description"] == "a perspective view of a second embodiment thereof"
    assert fig(g, "9")["view"] == "front"
    (statement,) = g.patent["drawing_statements"]
    assert statement.startswith("First and second side views, a back view, and top and bottom views")
    assert statement.endswith("are the same as FIGS. 2, 3, 5, 6, and 7 respectively.")
    assert g.patent["broken_lines"] is None


def test_colour_statement_before_figs() -> None:
    g = parse("USD0939223")
    assert [f["fig"] for f in g.figures] == ["1", "2"]
    assert [f["view"] for f in g.figures] == ["top", "top"]
    assert g.patent["drawing_statements"][0].startswith("The file of this patent contains at least one drawing")


# --- every fixture against the README table ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FACTS))
def test_fixture_matches_readme(name: str) -> None:
    loc, uspc, sheets, figs, tiffs, landscape = FACTS[name]
    g = parse(name)
    p = g.patent
    assert p["patent_id"] == name.split("-")[0]
    assert p["grant_date"] == dt.datetime.strptime(name.split("-")[1], "%Y%m%d").date()
    assert p["kind"] == "S1"
    assert p["dtd_version"] == "v4.5"
    assert p["locarno_edition"] == 13
    assert p["locarno"] == f"{loc[:2]}-{loc[2:]}"
    assert p["locarno_class"] == loc[:2]
    assert p["uspc"] == uspc
    assert p["uspc_class"] == uspc.split("/")[0]
    assert p["num_sheets"] == sheets
    assert p["num_figures"] == figs
    assert len(g.figures) == figs
    assert len({f["fig"] for f in g.figures}) == figs
    assert len(g.sheets) == tiffs
    assert len(list(folder(name).glob("*.TIF"))) == tiffs
    assert sum(s["orientation"] == "landscape" for s in g.sheets) == landscape
    assert [s["sheet"] for s in g.sheets] == list(range(tiffs))
    assert p["title"]
    assert "ornamental design for" in p["claim"].lower()  # some say "I claim the ornamental design for"


# --- rejects and hostile input -------------------------------------------------------------------------------


def test_non_design_raises_not_design_patent() -> None:
    xml = xml_bytes("USD0909824").replace(b"<kind>S1</kind>", b"<kind>B2</kind>", 1)
    xml = xml.replace(b'appl-type="design"', b'appl-type="utility"', 1)
    with pytest.raises(NotDesignPatent):
        parse_grant(xml)


def test_utility_appl_type_alone_is_not_design() -> None:
    xml = xml_bytes("USD0909824").replace(b'appl-type="design"', b'appl-type="utility"', 1)
    with pytest.raises(NotDesignPatent):
        parse_grant(xml)


def test_truncated_xml_raises_parse_error() -> None:
    xml = xml_bytes("USD0909824")
    with pytest.raises(ParseError):
        parse_grant(xml[: len(xml) // 2])


def test_wrong_root_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_grant(b'<?xml version="1.0"?><us-patent-application/>')


def test_external_entity_is_not_read() -> None:
    xml = xml_bytes("USD0909824").decode()
    doctype = re.search(r"<!DOCTYPE[^>]*>", xml).group(0)
    xml = xml.replace(doctype, '<!DOCTYPE us-patent-grant [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 1)
    xml = xml.replace(">Sport spoon</invention-title>", ">Sport &xxe; spoon</invention-title>", 1)
    try:
        title = parse_grant(xml.encode()).patent["title"]
    except ParseError:
        return
    assert "root:" not in (title or "")
    assert title.startswith("Sport") and title.endswith("spoon")


def v42_variant(xml: str) -> str:
    """A DTD v4.2-style grant: `parties`/`applicants`/`references-cited`, inventors only as applicant-inventors."""
    xml = xml.replace('dtd-version="v4.5 2014-04-03"', 'dtd-version="v4.2 2006-08-23"', 1)
    xml = xml.replace("us-parties>", "parties>")
    xml = xml.replace("us-applicants>", "applicants>")
    xml = xml.replace(
        '<us-applicant sequence="001" app-type="applicant"', '<applicant sequence="001" app-type="applicant-inventor"'
    )
    xml = xml.replace("</us-applicant>", "</applicant>")
    xml = re.sub(r"<inventors>.*?</inventors>\s*", "", xml, flags=re.S)
    xml = xml.replace("us-references-cited>", "references-cited>")
    xml = xml.replace("us-citation>", "citation>")
    assert "us-applicant" not in xml and "<inventors>" not in xml and "us-citation" not in xml
    return xml


def test_dtd_v42_variant() -> None:
    xml = v42_variant(xml_bytes("USD0909824").decode())
    p = parse_grant(xml.encode()).patent
    assert p["dtd_version"] == "v4.2"
    assert p["inventors"] == [{"name": "Christopher Lee Tillman", "city": "Mableton", "state": "GA", "country": "US"}]
    assert len(p["applicants"]) == 1
    assert len(p["cited_patents"]) == 8
    assert p["cited_patents"][0]["doc_number"] == "D151600"
    assert len(p["cited_other"]) == 1
    assert p["uspc"] == "D7/654"


def test_foreign_citations_without_kind_or_name_keep_columns_aligned() -> None:
    """USD0907292 cites CN 3014718 (Aug 1992) with no kind and no name; its neighbours keep theirs."""
    xml = (SAMPLE / "USD0907292-20210105" / "USD0907292-20210105.XML").read_bytes()
    cited = parse_grant(xml).patent["cited_patents"]
    assert len(cited) == 63
    cn = next(c for c in cited if c["doc_number"] == "3014718")
    assert cn == {"country": "CN", "doc_number": "3014718", "kind": None, "name": None, "date": "19920800",
                  "category": "cited by applicant"}
    assert sum(c["kind"] is None for c in cited) == 63 - 48
