"""Exclusion files in both formats, bad lines named, and the packaged DeepPatent lists (the real ones, checked)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from designclip.pipeline.release.exclusions import (
    ExclusionError,
    deeppatent_lists,
    deeppatent_weeks,
    default_exclusions,
    parse_exclusions,
    read_exclusion_file,
)


def test_patent_ids_one_per_line_with_comments_and_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "mine.txt"
    f.write_text("# kept out of training\nUSD0929296\n\n  USD0915080  \nUSD0929296\n")
    excluded = read_exclusion_file(f)
    assert excluded.name == "mine.txt" and excluded.patents == {"USD0929296", "USD0915080"}
    assert excluded.record()["patents"] == 2


def test_deeppatent_list_lines_as_they_are(tmp_path: Path) -> None:
    f = tmp_path / "test_query_patent.txt"
    f.write_text("I20181127/USD0834581-20181127/USD0834581-20181127-D00001.png 1\n"
                 "I20181127/USD0834581-20181127/USD0834581-20181127-D00010.png 1\n"
                 "I20180109/USD0807264-20180109/USD0807264-20180109-D00004.png 2\n"
                 "I20180612/USD0819983-20180612/USD0819983-20180612-P00006.png 1701\n")
    assert read_exclusion_file(f).patents == {"USD0834581", "USD0807264", "USD0819983"}


@pytest.mark.parametrize("bad", ["D834581", "USD0834581 extra", "I20181127/USD0834581-20181127/USD0834582-20181127"
                                 "-D00001.png 1", "US10000001"])
def test_a_line_in_neither_format_is_named(tmp_path: Path, bad: str) -> None:
    f = tmp_path / "list.txt"
    f.write_text(f"USD0929296\n\n{bad}\n")
    with pytest.raises(ExclusionError, match=r"list\.txt, line 3: .* neither a patent id"):
        read_exclusion_file(f)


def test_missing_and_empty_files_say_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ExclusionError, match="cannot be read"):
        read_exclusion_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ExclusionError, match="lists no patent"):
        read_exclusion_file(tmp_path / "empty.txt")


def test_packaged_deeppatent_lists_and_weeks() -> None:
    test, val = deeppatent_lists()
    assert (test.name, len(test.patents), val.name, len(val.patents)) == ("deeppatent-test", 6927, "deeppatent-val",
                                                                           5888)
    assert "USD0834581" in test.patents and "USD0810412" in val.patents and not test.patents & val.patents
    weeks = deeppatent_weeks()
    assert len(weeks) == 78 and min(weeks) == dt.date(2018, 1, 2) and max(weeks) == dt.date(2020, 1, 7)
    assert default_exclusions([dt.date(2021, 1, 5), dt.date(2018, 11, 27)]) == (test, val)
    assert default_exclusions([dt.date(2021, 1, 5)]) == ()


def test_packaged_ids_are_exactly_those_of_the_real_list_files() -> None:
    """The excluded ids are the patents of the real list files (shipped gzipped with designclip, BSD-3)."""
    from designclip.pipeline.deeppatent.lists import packaged_lists, read_lists

    test, val = deeppatent_lists()
    real = read_lists(packaged_lists()).raw
    for name, expected in (("test_query", test), ("test_db", test), ("val_query", val), ("val_db", val)):
        lines = real[f"{name}_patent.txt"].decode().splitlines()
        assert parse_exclusions(lines, name) == expected.patents, name
