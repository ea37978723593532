"""The ipg reader splits a weekly ipg-style file built from real grants (each with its own <?xml ?> and DOCTYPE)."""

from __future__ import annotations

from pathlib import Path

import pytest
from designclip.pipeline.ingest.hostile import MemberLimits
from designclip.pipeline.ingest.ipg import iter_ipg
from designclip.pipeline.ingest.parse import NotDesignPatent, parse_grant

SAMPLE = Path(__file__).resolve().parents[3] / "designclip" / "sample" / "patents"
DESIGNS = ["USD0909824", "USD0910059", "USD0911449"]


def xml_bytes(prefix: str) -> bytes:
    d = next(p for p in SAMPLE.iterdir() if p.name.startswith(prefix))
    return (d / f"{d.name}.XML").read_bytes()


def split_ipg(path: Path) -> list[bytes]:
    """The documents of an ipg file as the ingest reads them (default caps: every sample document fits)."""
    return [bundle.xml for bundle in iter_ipg(str(path), MemberLimits())]


def lines_file(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "ipg210209.xml"
    path.write_bytes(b"".join(lines))
    return path


def utility_doc() -> bytes:
    """A real grant rewritten as a utility patent (kind B2, appl-type utility)."""
    xml = xml_bytes("USD0928323").replace(b"<kind>S1</kind>", b"<kind>B2</kind>", 1)
    xml = xml.replace(b"<doc-number>D0928323</doc-number>", b"<doc-number>11000001</doc-number>", 1)
    return xml.replace(b'appl-type="design"', b'appl-type="utility"', 1)


@pytest.fixture
def ipg_file(tmp_path: Path) -> Path:
    docs = [xml_bytes(DESIGNS[0]), xml_bytes(DESIGNS[1]), utility_doc(), xml_bytes(DESIGNS[2])]
    for doc in docs:
        assert doc.startswith(b"<?xml") and b"<!DOCTYPE us-patent-grant" in doc[:300]
    path = tmp_path / "ipg210209.xml"
    path.write_bytes(b"".join(d if d.endswith(b"\n") else d + b"\n" for d in docs))
    return path


def test_split_yields_every_document(ipg_file: Path) -> None:
    docs = split_ipg(ipg_file)
    assert len(docs) == 4
    assert all(d.startswith(b"<?xml") for d in docs)
    assert all(d.count(b"<?xml") == 1 and d.count(b"<!DOCTYPE") == 1 for d in docs)
    assert all(d.rstrip().endswith(b"</us-patent-grant>") for d in docs)
    assert b"".join(docs) == ipg_file.read_bytes()
    assert docs[0] == xml_bytes(DESIGNS[0])


def test_split_documents_parse(ipg_file: Path) -> None:
    parsed, skipped = [], []
    for doc in split_ipg(ipg_file):
        try:
            parsed.append(parse_grant(doc, source_archive=ipg_file.name))
        except NotDesignPatent as exc:
            skipped.append(str(exc))
    assert [g.patent_id for g in parsed] == DESIGNS
    assert [g.patent["title"] for g in parsed] == [
        "Sport spoon",
        "Display screen or portion thereof with a graphical user interface",
        "Game housing and game pieces",
    ]
    assert [len(g.figures) for g in parsed] == [7, 1, 93]
    assert [len(g.sheets) for g in parsed] == [4, 2, 68]
    assert {g.patent["source_archive"] for g in parsed} == {"ipg210209.xml"}
    assert len(skipped) == 1 and "11000001" in skipped[0]


def test_split_ignores_trailing_blank_lines(tmp_path: Path) -> None:
    docs = split_ipg(lines_file(tmp_path, [xml_bytes(DESIGNS[0]), b"\r\n", b"  \n"]))
    assert len(docs) == 1


def test_split_empty_input(tmp_path: Path) -> None:
    assert split_ipg(lines_file(tmp_path, [])) == []
    assert split_ipg(lines_file(tmp_path, [b"\n", b"\r\n"])) == []
