"""`designclip ingest --archive FILE`: archives already on disk, including the no-images ipg form."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from designclip.flows.ingest import ingest_flow, local_archive
from designclip.pipeline.ingest.mirror import build_ipg, build_weekly_tar
from designclip.storage.folder import DataFolder
from designclip.storage.tables import read_table

from tests.conftest import patent_folder


@pytest.mark.usefixtures("prefect_harness")
def test_local_tar_and_ipg_files_are_ingested(tmp_path: Path) -> None:
    tar = build_weekly_tar(dt.date(2021, 1, 5), [patent_folder("USD0907292")], tmp_path / "in dir" / "I20210105.tar")
    ipg = build_ipg([patent_folder("USD0909824"), patent_folder("USD0910059")], tmp_path / "ipg210209.xml")
    rows = ingest_flow(start=dt.date.min, end=dt.date.max, data_root=str(tmp_path / "d"), archives=[str(tar), str(ipg)])
    assert [(r["week"], r["patents"]) for r in rows] == [("2021-01-05", 1), ("2021-02-09", 2)]
    sheets = read_table(DataFolder(tmp_path / "d"), "sheets", columns=["patent_id", "image_status"]).to_pylist()
    assert {s["image_status"] for s in sheets if s["patent_id"] == "USD0907292"} == {"ok"}
    assert {s["image_status"] for s in sheets if s["patent_id"] != "USD0907292"} == {"not_in_source"}


def test_unknown_archive_name_is_refused_with_the_expected_forms() -> None:
    with pytest.raises(ValueError, match="expected I20210105.tar"):
        local_archive("/tmp/weekly.tar")
