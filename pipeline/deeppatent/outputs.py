"""After the weeks: the lists copied as they are, the training list, missing.json and README.md, from the markers."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from designclip.pipeline.deeppatent.driver import DEEPPATENT, DeepPatentOptions, build_scope, week_marker
from designclip.pipeline.deeppatent.lists import EXTRA_FILES, TRAIN_LIST, DeepPatentLists
from designclip.pipeline.deeppatent.views import write_view_lists
from designclip.pipeline.ingest.driver import ingested, ingested_weeks
from designclip.storage import layout
from designclip.storage.folder import DataFolder
from designclip.storage.status import grant_weeks


def _records(folder: DataFolder, options: DeepPatentOptions) -> dict[dt.date, dict[str, Any] | None]:
    """Every week the rebuild needs (listed, or ingested in the range) -> its marker, None when not built."""
    settings, lists = options.settings(), options.lists()
    weeks = sorted({*lists.weeks(), *ingested_weeks(folder, options.start, options.end)})
    return {w: week_marker(folder, options.name, w).done(settings) for w in weeks}


def missing_record(lists: DeepPatentLists, records: dict[dt.date, dict[str, Any] | None], folder: DataFolder,
                   options: DeepPatentOptions) -> dict[str, Any]:
    """What the lists name that the rebuild lacks, by name and count, and the range weeks without tables."""
    listed_weeks = lists.weeks()
    not_built = {w.isoformat(): len(lists.sheets_of_week(w)) for w in listed_weeks if records.get(w) is None}
    not_ingested = [w for w in not_built if not ingested(folder, dt.date.fromisoformat(w))]
    sheets = sorted((m for w in listed_weeks if (rec := records.get(w)) for m in rec["missing"]),
                    key=lambda m: m["path"])
    range_gaps = [w.isoformat() for w in grant_weeks(options.start, options.end) if not ingested(folder, w)]
    listed = sum(len(lists.sheets_of_week(w)) for w in listed_weeks)
    total = len(sheets) + sum(not_built.values())
    summary = (f"missing: {total} of {listed} listed sheets ({sum(not_built.values())} in {len(not_built)} weeks "
               f"not built, {len(not_ingested)} of them not ingested; {len(sheets)} not in the ingested archives); "
               f"{len(range_gaps)} grant weeks of {options.start}..{options.end} not ingested")
    return {"summary": summary, "listed_sheets": listed, "missing_sheets": total, "weeks_not_built": not_built,
            "weeks_not_ingested": not_ingested, "sheets": sheets,
            "sheets_by_reason": dict(Counter(m["reason"].split(" ")[0] for m in sheets)),
            "range_weeks_not_ingested": range_gaps}


def train_lines(records: dict[dt.date, dict[str, Any] | None]) -> tuple[str, int, int]:
    """`path label` per training sheet, label = the patent's index (1, 2, ... as in DeepPatent's lists, in week
    then patent order); with the patent and sheet counts."""
    labels: dict[str, int] = {}
    lines = []
    for week in sorted(records):
        for path in (records[week] or {}).get("train", []):
            label = labels.setdefault(path.split("/")[1], len(labels) + 1)
            lines.append(f"{path} {label}\n")
    return "".join(lines), len(labels), len(lines)


def _covered(lists: DeepPatentLists, name: str, absent: set[str]) -> tuple[int, int, int]:
    """A list's lines, patents, and lines whose image was written."""
    sheets = lists.sheets[name]
    return len(sheets), len({s.patent_dir for s in sheets}), sum(s.path not in absent for s in sheets)


def views_section(views: dict[str, Any]) -> list[str]:
    """The README's per-FIG. part: protocol, counts per split, and the weeks still to render."""
    rows = [f"| {split} | {c['listed_patents']:,} | {c['patents_with_views']:,} | {c['queries']:,} | "
            f"{c['database']:,} | {c['single_view_queries']:,} |" for split, c in views["splits"].items()]
    gaps = views["weeks_not_rendered"]
    todo = (f"{len(gaps)} listed weeks were not rendered when built: {views['advice']}." if gaps
            else "Every built week with listed patents was rendered.")
    return ["## Per-FIG. views", "", f"`views/lists/*_view.txt` over `views/images/`: {views['protocol']}.", "",
            "| split | listed patents | with views | queries | database views | single-view query patents |",
            "|---|---|---|---|---|---|", *rows, "", todo, ""]


def readme(lists: DeepPatentLists, options: DeepPatentOptions, missing: dict[str, Any], absent: set[str],
           train: tuple[int, int], weeks_built: int, views: dict[str, Any]) -> str:
    """The rebuild's README: where it comes from, counts per list, the training split and what is missing."""
    rows = [f"| `{n}` | {lines:,} | {patents:,} | {covered:,} |"
            for n in lists.raw for lines, patents, covered in [_covered(lists, n, absent)]]
    return "\n".join([
        f"# DeepPatent rebuilt from the USPTO bulk archives (`{options.name}`)", "",
        "The images of the DeepPatent benchmark (Kucer et al., WACV 2022) written from this data root's ingested "
        "weekly grant archives: each listed drawing sheet is the patent's TIFF sheet decoded to an 8-bit grey PNG at "
        "its own resolution, under `images/` exactly as the lists name it. The lists in `lists/` are DeepPatent's "
        "own files, copied byte for byte (BSD-3, `lists/LICENSE` when the lists' folder had it).", "",
        "| list | lines | patents | images written |", "|---|---|---|---|", *rows, "",
        "## Training split", "",
        f"DeepPatent's own training list (`{TRAIN_LIST}`) is **not public**. `lists/{TRAIN_LIST}` here is a "
        f"rebuild: every sheet of every design patent granted {options.start} to {options.end} in the ingested "
        "weeks that is in no val/test list, one line per sheet (`path label`, label = the patent's index from 1). "
        f"It holds {train[1]:,} sheets of {train[0]:,} patents; it is not DeepPatent's training set, only the same "
        "rule applied to the same weeks.", "",
        "## Missing", "", missing["summary"] + ".", "",
        f"Weeks built: {weeks_built}. Names and reasons: `missing.json`.", "", *views_section(views)])


def finish(folder: DataFolder, options: DeepPatentOptions) -> dict[str, Any]:
    """Write lists/, lists/train_patent_trn.txt, missing.json and README.md (cheap: from the markers); the summary."""
    lists = options.lists()
    records = _records(folder, options)
    for name, body in lists.raw.items():
        with folder.atomic_open(layout.deeppatent_file(options.name, f"lists/{name}")) as f:
            f.write(body)
    for extra in EXTRA_FILES:
        if (lists.folder / extra).is_file():
            with folder.atomic_open(layout.deeppatent_file(options.name, f"lists/{extra}")) as f:
                f.write((lists.folder / extra).read_bytes())
    text, patents, sheets = train_lines(records)
    with folder.atomic_open(layout.deeppatent_file(options.name, f"lists/{TRAIN_LIST}"), "w") as f:
        f.write(text)
    missing = missing_record(lists, records, folder, options)
    folder.write_json(layout.deeppatent_file(options.name, "missing.json"), missing)
    absent = {m["path"] for m in missing["sheets"]} | {
        s.path for w in missing["weeks_not_built"] for s in lists.sheets_of_week(dt.date.fromisoformat(w)).values()}
    built = sum(r is not None for r in records.values())
    views = write_view_lists(folder, options.name, lists, records)
    with folder.atomic_open(layout.deeppatent_file(options.name, "README.md"), "w") as f:
        f.write(readme(lists, options, missing, absent, (patents, sheets), built, views))
    return {"name": options.name, "where": folder.path(layout.deeppatent_dir(options.name)), "weeks_built": built,
            "weeks": len(records), "listed_sheets": missing["listed_sheets"],
            "missing_sheets": missing["missing_sheets"],
            "train_patents": patents, "train_sheets": sheets, "summary": missing["summary"],
            "views": views["splits"], "weeks_not_rendered": views["weeks_not_rendered"]}


def build(folder: DataFolder, options: DeepPatentOptions) -> dict[str, Any]:
    """The whole rebuild as a library call (tests, benchmarks): every week, then `finish`; weeks done are skipped."""
    results = [DEEPPATENT.run(folder, w, options) for w in DEEPPATENT.units(folder, build_scope(options), options)]
    return finish(folder, options) | {"skipped": sum(r.skipped for r in results), "results": results}
