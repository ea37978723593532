"""`designclip status` shows a DeepPatent rebuild: weeks built, listed sheets written, the training split, missing."""

from __future__ import annotations

from pathlib import Path

from designclip.pipeline.dag.status_table import format_status
from designclip.pipeline.deeppatent.driver import DEEPPATENT, DeepPatentOptions
from designclip.pipeline.deeppatent.outputs import build
from designclip.pipeline.render.driver import RENDER
from designclip.storage.status import collect_status

from tests.fixtures.deeppatent import LISTS, TEST_WEEK, VAL_WEEK, ingested_deeppatent_weeks


def test_status_lists_each_rebuild_with_its_counts_and_missing_line(tmp_path: Path) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    assert collect_status(folder)["deeppatent"] == []
    assert "DeepPatent" not in format_status(collect_status(folder))
    DEEPPATENT.run(folder, TEST_WEEK, DeepPatentOptions(str(LISTS), name="half"))  # a week, not finished
    summary = build(folder, DeepPatentOptions(str(LISTS)))
    rebuilds = {d["name"]: d for d in collect_status(folder)["deeppatent"]}
    assert rebuilds["deeppatent"] == {"name": "deeppatent", "weeks_built": 2, "listed": 19, "listed_written": 17,
                                      "train_sheets": 8, "train_patents": 2, "view_patents": 0,
                                      "view_patents_listed": 2, "missing": summary["summary"]}
    assert rebuilds["half"]["weeks_built"] == 1 and "rerun `designclip deeppatent build`" in rebuilds["half"]["missing"]
    text = format_status(collect_status(folder))
    assert "DeepPatent rebuilds:" in text and "17/19" in text
    assert "| deeppatent | 2 | 17/19 | 8 | 2 | 0/2 | missing: 9 of 26" in format_status(collect_status(folder),
                                                                              markdown=True)
    for week in (VAL_WEEK, TEST_WEEK):  # rendered and built again: both listed patents have views
        RENDER.run(folder, week)
    build(folder, DeepPatentOptions(str(LISTS)))
    assert "| deeppatent | 2 | 17/19 | 8 | 2 | 2/2 |" in format_status(collect_status(folder), markdown=True)
