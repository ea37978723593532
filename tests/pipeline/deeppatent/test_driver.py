"""The DeepPatent driver keeps the stage contract: units are ingested weeks, a marker with other lists is not done."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from designclip.pipeline.deeppatent.driver import DEEPPATENT, DeepPatentOptions, WeekNotIngested, build_scope
from designclip.storage import layout

from tests.fixtures.deeppatent import ABSENT_WEEK, LISTS, TEST_WEEK, VAL_WEEK, ingested_deeppatent_weeks


def test_units_run_and_done_by_the_lists_fingerprint(tmp_path: Path) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    options = DeepPatentOptions(str(LISTS))
    scope = build_scope(options)
    assert (scope.start, scope.end) == (dt.date(2018, 1, 1), dt.date(2019, 6, 30))
    assert DEEPPATENT.units(folder, scope, options) == [VAL_WEEK, TEST_WEEK]
    with pytest.raises(WeekNotIngested, match=f"designclip ingest --start {ABSENT_WEEK}"):
        DEEPPATENT.run(folder, ABSENT_WEEK, options)
    seen: list[tuple[int, int | None]] = []
    result = DEEPPATENT.run(folder, TEST_WEEK, options, lambda done, total: seen.append((done, total)))
    assert (result.unit, result.skipped, result.stats["listed"], result.stats["listed_written"]) == (
        "I20181127", False, 11, 9)
    assert seen[-1] == (9 + 4, 9 + 4) and result.stats["bytes"] > 0
    assert result.where == folder.path(layout.deeppatent_dir("deeppatent"))
    assert DEEPPATENT.is_done(folder, TEST_WEEK, options) and not DEEPPATENT.is_done(folder, VAL_WEEK, options)
    assert DEEPPATENT.run(folder, TEST_WEEK, options).skipped
    other = tmp_path / "other-lists"
    shutil.copytree(LISTS, other)
    with open(other / "test_db_patent.txt", "a") as f:  # other lists: the week is built again
        f.write("I20181127/USD0834583-20181127/USD0834583-20181127-D00000.png 3\n")
    changed = DeepPatentOptions(str(other))
    assert not DEEPPATENT.is_done(folder, TEST_WEEK, changed)
    rebuilt = DEEPPATENT.run(folder, TEST_WEEK, changed)
    assert not rebuilt.skipped and not any("USD0834583" in p for p in rebuilt.stats["train"])


def test_a_range_outside_the_lists_builds_only_listed_sheets(tmp_path: Path) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    options = DeepPatentOptions(str(LISTS), name="listed-only", start=dt.date(2019, 1, 1), end=dt.date(2019, 6, 30))
    result = DEEPPATENT.run(folder, VAL_WEEK, options)
    assert result.stats["train"] == [] and result.stats["images"] == 8
