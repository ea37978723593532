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


EXPLICIT = "_explicit_flags"
"""Namespace attribute: the dests of the dataclass flags the user typed (a preset fills in only the others)."""


def _mark_explicit(namespace: argparse.Namespace, dest: str) -> None:
    setattr(namespace, EXPLICIT, frozenset(getattr(namespace, EXPLICIT, frozenset())) | {dest})


class _StoreExplicit(argparse.Action):
    """`store`, remembering that the flag was typed (a value equal to the default is still the user's choice)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        _mark_explicit(namespace, self.dest)


class _BoolExplicit(argparse.BooleanOptionalAction):
    """`--flag/--no-flag`, remembering that it was typed."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _mark_explicit(namespace, self.dest)


def explicit_dests(args: argparse.Namespace) -> frozenset[str]:
    """The dests of the dataclass flags given on the command line (typed, whatever their value)."""
    return frozenset(getattr(args, EXPLICIT, frozenset()))


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
            parser.add_argument(flag, dest=prefix.replace("-", "_") + f.name, action=_BoolExplicit,
                                default=default, help=help_text)
            continue
        parser.add_argument(flag, dest=prefix.replace("-", "_") + f.name, type=kind, default=default,
                            action=_StoreExplicit, choices=tuple((choices or {}).get(f.name, ())) or None,
                            help=help_text)


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", **given: Any) -> Any:
    """An instance of `cls` from the flags `add_dataclass_arguments` made (fields in `given` win)."""
    values = {f.name: getattr(args, prefix.replace("-", "_") + f.name) for f in dataclasses.fields(cls)
              if hasattr(args, prefix.replace("-", "_") + f.name)}
    return cls(**(values | given))


def explicit_fields(cls: type, args: argparse.Namespace, prefix: str = "", **given: Any) -> dict[str, Any]:
    """The fields whose flags the user typed (what a preset must not override, even when equal to the generic
    default), plus `given` (fields the caller knows were set by other flags)."""
    typed = explicit_dests(args)
    values = dataclass_from_args(cls, args, prefix)
    return {f.name: getattr(values, f.name) for f in dataclasses.fields(cls)
            if prefix.replace("-", "_") + f.name in typed} | given


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
