"""`designclip deeppatent build`: DeepPatent's benchmark rebuilt from the ingested weekly archives."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from designclip.cli.printers import parse_date
from designclip.storage import layout


def print_deeppatent(summary: dict[str, Any]) -> None:
    """Where the rebuild is, its counts, and the missing line (never left out)."""
    print(f"DeepPatent `{summary['name']}`: {summary['weeks_built']} of {summary['weeks']} weeks built "
          f"({summary.get('weeks_skipped', 0)} already done)")
    print(f"  listed sheets: {summary['listed_sheets']}, missing: {summary['missing_sheets']}")
    print(f"  training split: {summary['train_sheets']} sheets of {summary['train_patents']} patents")
    print(f"  {summary['summary']}")
    for split, c in (summary.get("views") or {}).items():
        print(f"  per-FIG. views ({split}): {c['queries']} queries, {c['database']} database views, "
              f"{c['patents_with_views']} of {c['listed_patents']} listed patents rendered")
    if summary.get("weeks_not_rendered"):
        weeks = summary["weeks_not_rendered"]
        print(f"  {len(weeks)} listed weeks not rendered yet, so without per-FIG. views: `designclip render "
              f"--start {weeks[0]} --end {weeks[-1]}`, then build again")
    print(f"  images, views, lists, README.md, missing.json: {summary['where']}")


def cmd_deeppatent_build(args: argparse.Namespace) -> int:
    from designclip.flows.deeppatent import deeppatent_flow
    from designclip.pipeline.deeppatent.lists import packaged_lists

    lists = Path(args.lists).resolve() if args.lists else packaged_lists()
    summary = deeppatent_flow(lists=str(lists), data_root=args.data_root, name=args.name,
                              start=args.start, end=args.end, profile=f"px{args.size}")
    print_deeppatent(summary)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `deeppatent build` on the main parser."""
    deeppatent = sub.add_parser("deeppatent", help="DeepPatent's benchmark rebuilt from the ingested archives")
    actions = deeppatent.add_subparsers(dest="deeppatent_command", required=True)
    build = actions.add_parser("build", help="write DeepPatent's images as its lists name them, its lists and a "
                               "training split (one task per ingested week; finished weeks are skipped)")
    build.add_argument("--lists", metavar="DIR",
                       help="folder of DeepPatent's list files (test_query_patent.txt, test_db_patent.txt, "
                            "val_*.txt, train_patent_val.txt: GoFigure-LANL/DeepPatent-dataset data/; plain or .gz); "
                            "default: the real lists shipped with designclip (BSD-3)")
    build.add_argument("--name", default=layout.DEFAULT_DEEPPATENT_NAME,
                       help="the rebuild's folder: DATA_ROOT/deeppatent/NAME (default "
                            f"{layout.DEFAULT_DEEPPATENT_NAME})")
    build.add_argument("--start", type=parse_date, help="first grant date of the training split (default 2018-01-01)")
    build.add_argument("--end", type=parse_date, help="last grant date of the training split (default 2019-06-30)")
    build.add_argument("--size", type=int, default=512,
                       help="which rendered view size makes the per-FIG. variant (default 512)")
    build.set_defaults(func=cmd_deeppatent_build)
