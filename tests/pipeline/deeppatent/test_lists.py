"""DeepPatent's list lines parse strictly; a folder without its lists says what to give."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from designclip.pipeline.deeppatent.lists import ListError, parse_line, read_lists

from tests.fixtures.deeppatent import LISTS


def test_a_line_names_week_patent_and_sheet() -> None:
    s = parse_line("I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1")
    assert (s.week, s.patent_id, s.patent_dir, s.stem, s.label) == (
        dt.date(2018, 11, 27), "USD0834581", "USD0834581-20181127", "USD0834581-20181127-D00002", "1")
    assert parse_line("I20190430/USD0847133-20190430/USD0847133-20190430-P00001.png 7").stem.endswith("P00001")


@pytest.mark.parametrize("line", ["I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png",
                                  "I20181127/USD0834581-20181127/USD0834582-20181127-D00002.png 1",
                                  "20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1"])
def test_other_lines_are_refused_with_where(line: str) -> None:
    with pytest.raises(ListError, match="test.txt line 3"):
        parse_line(line, "test.txt line 3")


def test_read_lists_keeps_bytes_and_holds_out_every_listed_patent(tmp_path: Path) -> None:
    lists = read_lists(LISTS)
    assert set(lists.raw) == {p.name for p in LISTS.glob("*.txt")}
    assert lists.raw["test_db_patent.txt"] == (LISTS / "test_db_patent.txt").read_bytes()
    assert lists.held_out() == {"USD0834581", "USD0810412", "USD0807264"}
    assert lists.weeks() == [dt.date(2018, 1, 9), dt.date(2018, 2, 20), dt.date(2018, 11, 27)]
    assert len(lists.sheets_of_week(dt.date(2018, 11, 27))) == 11  # D00000..D00010, in query and db lists
    with pytest.raises(ListError, match="test_query_patent.txt"):
        read_lists(tmp_path)


def test_the_real_lists_ship_with_designclip_gzipped_and_read_as_published() -> None:
    """`--lists` defaults to the packaged real lists (BSD-3 licence beside them); their counts are DeepPatent's."""
    from designclip.pipeline.deeppatent.lists import packaged_lists, read_lists

    folder = packaged_lists()
    assert "Redistribution and use in source and binary forms" in (folder / "LICENSE").read_text()
    lists = read_lists(folder)
    counts = {name: len(sheets) for name, sheets in lists.sheets.items()}
    assert counts == {"test_query_patent.txt": 13133, "test_db_patent.txt": 38834, "val_query_patent.txt": 11271,
                      "val_db_patent.txt": 33544, "train_patent_val.txt": 44815}
    assert lists.raw["test_query_patent.txt"].endswith(b"\n") and b"\r" not in lists.raw["test_query_patent.txt"][:200]
    assert len({s.patent_id for s in lists.sheets["test_query_patent.txt"]}) == 6927
