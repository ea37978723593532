"""A stage's command-line options made from its options dataclass: one declaration, one default, one help text."""

from __future__ import annotations

import argparse
import dataclasses
import typing
import uuid
from collections.abc import Iterable, Mapping
from typing import Any


def _value_type(kind: Any) -> type:
    """int / float / str of an annotation like `int | None`."""
    args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    return args[0]


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, helps: Mapping[str, str],
                            skip: Iterable[str] = (), choices: Mapping[str, Iterable[str]] | None = None,
                            prefix: str = "") -> None:
    """One `--field-name` per field of `cls` (less `skip`), typed and defaulted by the dataclass itself."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        text = helps.get(f.name, "")
        help_text = f"{text} (default {default})" if text else f"(default {default})"
        kind = _value_type(hints[f.name])
        if kind is bool:
            parser.add_argument(flag, dest=prefix.replace("-", "_") + f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)
            continue
        parser.add_argument(flag, dest=prefix.replace("-", "_") + f.name, type=kind, default=default,
                            choices=tuple((choices or {}).get(f.name, ())) or None, help=help_text)


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", **given: Any) -> Any:
    """An instance of `cls` from the flags `add_dataclass_arguments` made (fields in `given` win)."""
    values = {f.name: getattr(args, prefix.replace("-", "_") + f.name) for f in dataclasses.fields(cls)
              if hasattr(args, prefix.replace("-", "_") + f.name)}
    return cls(**(values | given))


def changed_from_defaults(cls: type, args: argparse.Namespace, prefix: str = "", **given: Any) -> dict[str, Any]:
    """The fields whose flags differ from the dataclass defaults (what a preset must not override), plus `given`.

    A flag set to its generic default cannot be told from an unset one: the preset's value wins there.
    """
    defaults = cls()
    values = dataclass_from_args(cls, args, prefix)
    changed = {f.name: getattr(values, f.name) for f in dataclasses.fields(cls)
               if getattr(values, f.name) != getattr(defaults, f.name)}
    return changed | {k: v for k, v in given.items() if v != getattr(defaults, k)}


def add_keep_raw(parser: argparse.ArgumentParser) -> None:
    """`--keep-raw`: whether downloaded weekly archives stay under raw/ after their week is ingested."""
    from designclip.pipeline.ingest.driver import KEEP_RAW, IngestOptions

    default = IngestOptions().keep_raw
    parser.add_argument("--keep-raw", choices=KEEP_RAW, default=default,
                        help=f"none: delete each downloaded weekly archive once its week is ingested, keeping its "
                             f"manifest (URL, size, sha256), so a year does not keep hundreds of GB; all: keep them "
                             f"(default {default})")


def add_download_options(parser: argparse.ArgumentParser) -> None:
    """`--max-downloads` and `--download-limit`, whose defaults depend on the source (see download_policy)."""
    parser.add_argument("--max-downloads", type=int,
                        help="concurrent downloads (default 2; 1 for --source odp, which allows no parallel requests)")
    parser.add_argument("--download-limit", type=int, metavar="N",
                        help="refuse to download one file more than N times a year (default: no limit; 20 for "
                             "--source odp, the portal's quota per file and key), counted in raw/*.downloads.json")


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments that can be told at once (before Prefect starts or data is read); else None."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None and end is not None and start > end:
        return f"--start {start} is after --end {end}: swap them"
    run_id = getattr(args, "flow_run_id", None)
    if run_id is not None:
        try:
            uuid.UUID(run_id)
        except ValueError:
            return (f"{run_id!r} is not a flow run id (a UUID like 3f2b8c1e-...): copy it from the run's log or the "
                    "Prefect UI, or use --failed / --from STAGE with --start and --end")
    return None
