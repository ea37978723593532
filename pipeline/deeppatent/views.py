"""The benchmark cut into per-FIG. views: the rendered views of the test/val patents, and lists that rank them.

DeepPatent ranks whole drawing sheets; this project's render cuts every FIG. into its own view. A week's rendered
shards give the views of the patents the test and val lists name, written as PNGs under `views/images/` in the sheets'
layout (`I20181127/USD0834581-20181127/USD0834581-20181127-f1.png`). After the weeks, each split gets a query and a
database list in DeepPatent's own format (`path label`): one view (the first FIG.) of each query patent with two or more
views is its query, every other view of the split's patents is in the database, so relevant = the other views of the
query's patent, and single-view patents stay as distractors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from designclip.pipeline.common.fallbacks import multi_fig_fallbacks
from designclip.pipeline.deeppatent.lists import DeepPatentLists
from designclip.storage import layout
from designclip.storage.captions import rendered_shards
from designclip.storage.folder import DataFolder
from designclip.storage.release import iter_shard_samples
from designclip.storage.shards import read_index
from designclip.storage.tables import finished_weeks

SPLIT_LISTS = {"test": ("test_query_patent.txt", "test_db_patent.txt"),
               "val": ("val_query_patent.txt", "val_db_patent.txt")}
"""The sheet-level lists each per-view split is cut from."""
VIEW_LISTS = {"test": ("test_query_view.txt", "test_db_view.txt"), "val": ("val_query_view.txt", "val_db_view.txt")}
"""The per-view lists written under `views/lists/` (same `path label` format as DeepPatent's)."""
VIEWS_DIR = "views"
INDEX_COLUMNS = ["key", "patent_id", "sheet", "segmentation", "flag"]
"""What the fallback rule reads of a shard's index rows."""
VIEWS_PROTOCOL = ("per-FIG. views of the listed patents (this project's render): the first view of each query patent "
                  "with two or more views is its query, the database is every other view of the split's patents; "
                  "relevant = the other views of the query's patent; single-view patents are distractors")


def split_patents(lists: DeepPatentLists) -> dict[str, tuple[set[str], set[str]]]:
    """{split: (query patent dirs, database patent dirs)} for the splits whose two lists are there."""
    return {split: ({s.patent_dir for s in lists.sheets[q]}, {s.patent_dir for s in lists.sheets[d]})
            for split, (q, d) in SPLIT_LISTS.items() if q in lists.sheets and d in lists.sheets}


def view_patents(lists: DeepPatentLists) -> set[str]:
    """Every patent dir (`USD0834581-20181127`) whose views the variant needs."""
    return {p for query, db in split_patents(lists).values() for p in query | db}


def view_path(week: dt.date, patent_dir: str, patent_id: str, key: str) -> str:
    """`I20181127/USD0834581-20181127/USD0834581-20181127-f1.png` for sample `USD0834581_f1`."""
    return f"{layout.week_id(week)}/{patent_dir}/{patent_dir}-{key.removeprefix(patent_id + '_')}.png"


def is_rendered(folder: DataFolder, week: dt.date, profile: str) -> bool:
    return week in set(finished_weeks(folder, layout.render_stage(profile)))


def write_week_views(folder: DataFolder, week: dt.date, wanted: set[str], name: str, profile: str,
                     write: Callable[[str, bytes], int]) -> dict[str, Any]:
    """Write the rendered views of the week's `wanted` patent dirs; {rendered, profile, wanted, patents, bytes}.

    `patents` maps each patent dir found to its view paths in FIG. order; whole-sheet fallbacks of sheets with
    several FIG.s are left out and counted (`fallbacks_left_out`), as a release leaves them out; a week not rendered
    records rendered=False (the build is redone for it once it is rendered).
    """
    record: dict[str, Any] = {"rendered": False, "profile": profile, "wanted": len(wanted), "patents": {}, "bytes": 0,
                              "fallbacks_left_out": 0}
    if not wanted or not is_rendered(folder, week, profile):
        return record
    record["rendered"] = True
    shards = rendered_shards(folder, profile, week, week)
    several_figs = multi_fig_fallbacks(
        SimpleNamespace(**row) for ref in shards
        for row in read_index(folder, layout.shard_index(profile, week, ref.number)).select(INDEX_COLUMNS).to_pylist()
        if f"{row['patent_id']}-{week:%Y%m%d}" in wanted)
    for ref in shards:
        for sample in iter_shard_samples(folder, profile, week, ref.tar):
            patent_dir = f"{sample.patent_id}-{week:%Y%m%d}"
            if patent_dir not in wanted:
                continue
            if sample.key in several_figs:  # a whole sheet showing several FIG.s is not a per-FIG. view
                record["fallbacks_left_out"] += 1
                continue
            png = next((d for n, d in sample.members if n.endswith(".png")), None)
            if png is None:
                continue
            path = view_path(week, patent_dir, sample.patent_id, sample.key)
            record["bytes"] += write(layout.deeppatent_file(name, f"{VIEWS_DIR}/images/{path}"), png)
            record["patents"].setdefault(patent_dir, []).append(path)
    return record


def needs_views(record: dict[str, Any] | None, folder: DataFolder, week: dt.date) -> bool:
    """A finished week whose wanted views were not there when it was built, and whose render is there now."""
    views = (record or {}).get("views") or {}
    return bool(views.get("wanted")) and not views.get("rendered") and is_rendered(
        folder, week, views.get("profile", layout.DEFAULT_PROFILE))


def split_lines(query: set[str], db: set[str], views: dict[str, list[str]]) -> dict[str, Any]:
    """The split's query and database lines (`path label`, label = the patent's index from 1) and their counts."""
    patents = sorted(query | db)
    labels = {p: i for i, p in enumerate(patents, 1)}
    query_lines, db_lines, single = [], [], 0
    for p in patents:
        paths = views.get(p, [])
        if p in query and len(paths) >= 2:
            query_lines.append(f"{paths[0]} {labels[p]}\n")
            paths = paths[1:]
        elif p in query and paths:
            single += 1
        db_lines.extend(f"{path} {labels[p]}\n" for path in paths)
    missing = sorted(p for p in patents if not views.get(p))
    return {"query": "".join(query_lines), "db": "".join(db_lines),
            "counts": {"listed_patents": len(patents), "patents_with_views": len(patents) - len(missing),
                       "queries": len(query_lines), "database": len(db_lines), "single_view_queries": single,
                       "missing_patents": len(missing), "missing_patent_examples": missing[:10]}}


def write_view_lists(folder: DataFolder, name: str, lists: DeepPatentLists,
                     records: dict[dt.date, dict[str, Any] | None]) -> dict[str, Any]:
    """`views/lists/*_view.txt` per split from the week markers, and `views/views.json` with counts and gaps."""
    views: dict[str, list[str]] = {}
    for record in records.values():
        for patent_dir, paths in ((record or {}).get("views") or {}).get("patents", {}).items():
            views.setdefault(patent_dir, []).extend(paths)
    not_rendered = sorted(w.isoformat() for w, r in records.items()
                          if (v := (r or {}).get("views") or {}).get("wanted") and not v.get("rendered"))
    splits = {}
    for split, (query, db) in split_patents(lists).items():
        cut = split_lines(query, db, views)
        for kind, file in zip(("query", "db"), VIEW_LISTS[split], strict=True):
            with folder.atomic_open(layout.deeppatent_file(name, f"{VIEWS_DIR}/lists/{file}"), "w") as f:
                f.write(cut[kind])
        splits[split] = cut["counts"]
    left_out = sum(((r or {}).get("views") or {}).get("fallbacks_left_out", 0) for r in records.values())
    summary = {"protocol": VIEWS_PROTOCOL, "splits": splits, "weeks_not_rendered": not_rendered,
               "fallbacks_left_out": left_out,
               "advice": (f"render these weeks (`designclip render --start {not_rendered[0]} --end "
                          f"{not_rendered[-1]}`), then build again" if not_rendered else "")}
    folder.write_json(layout.deeppatent_file(name, f"{VIEWS_DIR}/views.json"), summary)
    return summary
