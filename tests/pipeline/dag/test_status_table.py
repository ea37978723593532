"""The status tables as aligned text and as Markdown, checked by hand (a `|` inside a cell is escaped)."""

from __future__ import annotations

from designclip.pipeline.dag.status_table import markdown_table, text_table


def test_text_and_markdown_tables_by_hand() -> None:
    headers, rows = ["week", "state", "views"], [["2021-01-05", "done", "12"], ["2021-01-12", "missing", ""],
                                                 ["2021-01-19", "a|b", "7"]]
    assert text_table(headers, rows).splitlines() == [
        "week        state    views",
        "----------  -------  -----",
        "2021-01-05  done        12",
        "2021-01-12  missing",
        "2021-01-19  a|b          7",
    ]
    assert markdown_table(headers, rows).splitlines() == [
        "| week | state | views |", "|---|---|---|", "| 2021-01-05 | done | 12 |", "| 2021-01-12 | missing |  |",
        "| 2021-01-19 | a\\|b | 7 |"]
