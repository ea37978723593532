"""The per-FIG. variant: the listed test/val patents' rendered views written as files, and lists that rank them."""

from __future__ import annotations

import datetime as dt
import json
import tarfile
from pathlib import Path

from designclip.pipeline.deeppatent.driver import DEEPPATENT, DeepPatentOptions
from designclip.pipeline.deeppatent.outputs import build
from designclip.pipeline.deeppatent.views import split_lines, write_week_views
from designclip.pipeline.render.driver import RENDER
from designclip.storage.folder import DataFolder

from tests.fixtures.deeppatent import LISTS, TEST_WEEK, VAL_WEEK, ingested_deeppatent_weeks


def rendered_pngs(root: Path, week_id: str, patent_id: str) -> dict[str, bytes]:
    """{sample key: PNG} of one patent from its week's render shards, in shard order."""
    out = {}
    for tar in sorted((root / "shards" / "px512" / week_id).glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                if m.name.startswith(patent_id + "_") and m.name.endswith(".png"):
                    out[m.name.removesuffix(".png")] = t.extractfile(m).read()
    return out


def lines(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in path.read_text().splitlines()]


def test_views_wait_for_render_then_are_written_and_listed(tmp_path: Path) -> None:
    folder = ingested_deeppatent_weeks(tmp_path)
    root, options = tmp_path / "data", DeepPatentOptions(str(LISTS))
    out = root / "deeppatent" / "deeppatent"
    first = build(folder, options)
    views = json.loads((out / "views" / "views.json").read_text())
    assert views["weeks_not_rendered"] == [VAL_WEEK.isoformat(), TEST_WEEK.isoformat()]
    assert "designclip render --start 2018-02-20 --end 2018-11-27" in views["advice"]
    assert first["views"]["test"]["patents_with_views"] == 0 and not (out / "views" / "images").exists()
    assert (out / "views" / "lists" / "test_query_view.txt").read_text() == ""

    for week in (VAL_WEEK, TEST_WEEK):
        RENDER.run(DataFolder(str(root)), week)
    assert not DEEPPATENT.is_done(folder, TEST_WEEK, options), "a week built before its render is built again"
    second = build(folder, options)
    assert second["skipped"] == 0 and second["weeks_not_rendered"] == []

    pngs = rendered_pngs(root, "I20181127", "USD0834581")
    assert len(pngs) >= 2
    names = [f"I20181127/USD0834581-20181127/USD0834581-20181127-{k.split('_', 1)[1]}.png" for k in pngs]
    for name, png in zip(names, pngs.values(), strict=True):
        assert (out / "views" / "images" / name).read_bytes() == png, "each view is the rendered PNG as it is"
    query = lines(out / "views" / "lists" / "test_query_view.txt")
    db = lines(out / "views" / "lists" / "test_db_view.txt")
    assert query == [(names[0], "2")], "the first FIG. is the query (label = patent index, sorted)"
    assert db == [(n, "2") for n in names[1:]], "its other views are the relevant database"
    counts = second["views"]["test"]
    assert (counts["listed_patents"], counts["patents_with_views"], counts["missing_patents"]) == (2, 1, 1)
    assert counts["missing_patent_examples"] == ["USD0807264-20180109"]  # week never ingested: named, not dropped
    val_query = lines(out / "views" / "lists" / "val_query_view.txt")
    assert [p.split("/")[1] for p, _ in val_query] == ["USD0810412-20180220"]
    assert not any("USD0834583" in p or "USD0810415" in p for p, _ in [*query, *db, *val_query]), \
        "training patents are not in the per-view lists"
    assert "## Per-FIG. views" in (out / "README.md").read_text()
    assert build(folder, options)["skipped"] == 2, "rendered and built: skipped"


def test_split_lines_keep_single_view_patents_as_distractors() -> None:
    views = {"A-1": ["a1", "a2", "a3"], "B-1": ["b1"], "C-1": ["c1", "c2"]}
    cut = split_lines({"A-1", "B-1"}, {"A-1", "B-1", "C-1", "D-1"}, views)
    assert cut["query"] == "a1 1\n"
    assert cut["db"] == "a2 1\na3 1\nb1 2\nc1 3\nc2 3\n"
    assert cut["counts"] == {"listed_patents": 4, "patents_with_views": 3, "queries": 1, "database": 5,
                             "single_view_queries": 1, "missing_patents": 1, "missing_patent_examples": ["D-1"]}


def test_whole_sheet_fallbacks_showing_several_figs_are_left_out_and_counted(tmp_path: Path) -> None:
    from tests.fixtures.release import clone_week

    folder = ingested_deeppatent_weeks(tmp_path)
    RENDER.run(folder, TEST_WEEK)
    week = TEST_WEEK + dt.timedelta(days=7)

    def two_figs_one_sheet(meta: dict) -> dict:  # FIG.s 1 and 2 came out as fallbacks of one sheet
        if meta["patent_id"] == "USD0834581" and meta["fig"] in ("1", "2"):
            return meta | {"sheet": 1, "segmentation": "fallback", "flagged": True}
        return meta

    clone_week(Path(folder.root), TEST_WEEK, week, two_figs_one_sheet)
    patent_dir = f"USD0834581-{week:%Y%m%d}"
    record = write_week_views(folder, week, {patent_dir}, "dp", "px512", lambda rel, png: len(png))
    kept = [p.rsplit("-", 1)[1] for p in record["patents"][patent_dir]]
    assert record["fallbacks_left_out"] == 2 and "f1.png" not in kept and "f2.png" not in kept
    whole = write_week_views(folder, TEST_WEEK, {"USD0834581-20181127"}, "dp", "px512", lambda rel, png: len(png))
    assert len(kept) == len(whole["patents"]["USD0834581-20181127"]) - 2 and whole["fallbacks_left_out"] == 0
