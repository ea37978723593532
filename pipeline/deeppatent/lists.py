"""DeepPatent's list files (`I{week}/{patent}-{date}/{patent}-{date}-D0000k.png label`), parsed once, kept as bytes."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

LIST_NAMES = ("test_query_patent.txt", "test_db_patent.txt", "val_query_patent.txt", "val_db_patent.txt",
              "train_patent_val.txt")
"""The public lists of GoFigure-LANL/DeepPatent-dataset (`data/`); every patent in them is held out of training."""
TRAIN_LIST = "train_patent_trn.txt"
"""DeepPatent's own training list: not public, so the build writes its own under this name."""
EXTRA_FILES = ("LICENSE", "README.md")
"""Copied beside the lists when the lists' folder has them (the lists are BSD-3: the licence travels with them)."""

_LINE = re.compile(r"^(I(\d{8}))/(([A-Za-z0-9]+)-(\d{8}))/(\3-[A-Za-z0-9]+)\.png$")


class ListError(ValueError):
    """A list folder or line that is not DeepPatent's format; the message names the file and line."""


@dataclass(frozen=True)
class ListedSheet:
    """One line of a list: the image path as listed, its label, and the week, patent and sheet stem it names."""

    path: str
    label: str
    week: dt.date
    patent_id: str
    stem: str

    @property
    def patent_dir(self) -> str:
        """`USD0834581-20181127`: the patent key DeepPatent's relevance is defined on."""
        return self.path.split("/")[1]


def parse_line(line: str, where: str = "") -> ListedSheet:
    """`I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1` -> ListedSheet."""
    parts = line.split()
    match = _LINE.match(parts[0]) if len(parts) == 2 else None
    if match is None:
        raise ListError(f"{where}: {line!r} is not `I<date>/<patent>-<date>/<patent>-<date>-<sheet>.png <label>`")
    week = dt.datetime.strptime(match.group(2), "%Y%m%d").date()
    return ListedSheet(parts[0], parts[1], week, match.group(4), match.group(6))


@dataclass(frozen=True)
class DeepPatentLists:
    """The list files of one folder: their bytes (copied as they are) and their parsed lines."""

    folder: Path
    raw: dict[str, bytes]
    sheets: dict[str, tuple[ListedSheet, ...]] = field(repr=False)

    def all_sheets(self) -> Iterable[ListedSheet]:
        for name in self.raw:
            yield from self.sheets[name]

    def held_out(self) -> set[str]:
        """Every patent id of every list: none of them may be in the training split."""
        return {s.patent_id for s in self.all_sheets()}

    def weeks(self) -> list[dt.date]:
        return sorted({s.week for s in self.all_sheets()})

    @functools.cached_property
    def _by_week(self) -> dict[dt.date, dict[str, ListedSheet]]:
        weeks: dict[dt.date, dict[str, ListedSheet]] = {}
        for s in self.all_sheets():
            weeks.setdefault(s.week, {})[s.path] = s
        return weeks

    def sheets_of_week(self, week: dt.date) -> dict[str, ListedSheet]:
        """The distinct listed images of one week by path (a sheet listed in query and train_val lists is one)."""
        return dict(self._by_week.get(week, {}))

    def fingerprint(self) -> str:
        """sha256 over the list files' names and bytes: other lists make other outputs."""
        digest = hashlib.sha256()
        for name in sorted(self.raw):
            digest.update(name.encode() + b"\0" + hashlib.sha256(self.raw[name]).digest())
        return digest.hexdigest()[:16]


def packaged_lists() -> Path:
    """The real DeepPatent lists shipped with designclip (gzipped, BSD-3 licence beside them): `--lists`' default."""
    return Path(str(resources.files("designclip.reference").joinpath("deeppatent", "lists")))


def _list_bytes(root: Path, name: str) -> bytes | None:
    """A list file's bytes as published, from `name` or its gzipped copy `name.gz` (how designclip ships them)."""
    if (root / name).is_file():
        return (root / name).read_bytes()
    if (root / f"{name}.gz").is_file():
        return gzip.decompress((root / f"{name}.gz").read_bytes())
    return None


def read_lists(folder: str | Path) -> DeepPatentLists:
    """The DeepPatent lists present in `folder` (at least one test list), parsed strictly."""
    root = Path(folder)
    if not root.is_dir():
        raise ListError(f"--lists {root}: no such folder; give the folder of DeepPatent's list files "
                        "(e.g. test_query_patent.txt, from GoFigure-LANL/DeepPatent-dataset data/)")
    raw = {name: body for name in LIST_NAMES if (body := _list_bytes(root, name)) is not None}
    if not any(name.startswith("test_") for name in raw):
        raise ListError(f"--lists {root}: none of {', '.join(LIST_NAMES[:2])} is there; give the folder that holds "
                        "DeepPatent's list files")
    sheets = {}
    for name, body in raw.items():
        lines = body.decode("utf-8").splitlines()
        sheets[name] = tuple(parse_line(line, f"{name} line {i}") for i, line in enumerate(lines, 1) if line.strip())
    return DeepPatentLists(root, raw, sheets)
