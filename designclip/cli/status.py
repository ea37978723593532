"""`designclip status`: the stage x week table from the data root's done markers, never from Prefect's database."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from designclip.storage import layout


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2021-01-05") from exc


def cmd_status(args: argparse.Namespace) -> int:
    from designclip.pipeline.dag.status_table import format_status
    from designclip.storage.folder import DataFolder
    from designclip.storage.status import collect_status

    folder = DataFolder(args.data_root)
    if folder.fs.isfile(folder.path("")):
        print(f"designclip status: the data root {args.data_root} is a file, not a folder: pass --data-root FOLDER "
              "(or set DESIGNCLIP_DATA_ROOT)", file=sys.stderr)
        return 2
    status = collect_status(args.data_root, start=args.start, end=args.end, profile=args.profile)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, default=str))
    else:
        print(format_status(status, markdown=args.markdown), end="")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the status subcommand on the main parser."""
    status = sub.add_parser("status", help="what is done, failed or missing per stage and week (from the data root)")
    status.add_argument("--start", type=_date, help="first grant date: every grant week from here is listed")
    status.add_argument("--end", type=_date, help="last grant date (with --start: weeks never ingested show missing)")
    status.add_argument("--profile", default=layout.DEFAULT_PROFILE,
                        help=f"render profile to report (default {layout.DEFAULT_PROFILE})")
    out = status.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the status as JSON (every field, full errors)")
    out.add_argument("--markdown", action="store_true", help="print Markdown tables (e.g. for a Prefect artifact)")
    status.set_defaults(func=cmd_status)
