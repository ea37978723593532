"""The ipg form read one document at a time: a document over the XML cap is an error row and the next is read."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from designclip.pipeline.ingest.hostile import MemberLimits
from designclip.pipeline.ingest.mirror import build_ipg
from designclip.pipeline.ingest.week_archive import ingest_archive
from designclip.storage.folder import DataFolder
from designclip.storage.tables import WeekWriter, read_table

from tests.conftest import patent_folder
from tests.fixtures.hostile import WEEK


@pytest.mark.parametrize("zipped", [False, True])
def test_an_ipg_document_over_the_xml_cap_is_an_error_row_and_the_next_is_read(tmp_path: Path, zipped: bool) -> None:
    folders = [patent_folder("USD0909824"), patent_folder("USD0910059"), patent_folder("USD0911449")]
    ipg = build_ipg(folders, tmp_path / "ipg210209.xml")  # documents of 15, 10 and 137 KB, in id order
    if zipped:
        with zipfile.ZipFile(tmp_path / "ipg210209.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(ipg, "ipg210209.xml")
        ipg = tmp_path / "ipg210209.zip"
    folder = DataFolder(tmp_path / "data")
    with WeekWriter(folder, WEEK, ipg.name) as sink:
        stats = ingest_archive(str(ipg), ipg.name, WEEK, sink, limits=MemberLimits(max_xml_bytes=12_000))
    errors = read_table(folder, "errors").to_pylist()
    assert [(e["member"], e["reason"]) for e in errors] == [("ipg210209.xml#doc1", "too_large"),
                                                            ("ipg210209.xml#doc3", "too_large")]
    assert read_table(folder, "patents").column("patent_id").to_pylist() == ["USD0910059"]
    assert stats.documents_in == 3
