"""Patent lists a release keeps out of train and val: ids one per line, or DeepPatent's list files as they are."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

_PATENT = re.compile(r"^USD\d{7}$")
# `I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1`: week folder / patent-date / sheet image, label
_DEEPPATENT = re.compile(
    r"^I(?P<week>\d{8})/(?P<id>USD\d{7})-(?P<date>\d{8})/(?P=id)-(?P=date)-[A-Z]\d{5}\.\w+(\s+\d+)?$")
DEEPPATENT_LISTS = ("deeppatent-test", "deeppatent-val")


class ExclusionError(ValueError):
    """An exclusion file that is neither format; the message names the file and line."""


@dataclass(frozen=True)
class ExclusionList:
    """A named set of patents to keep out of train and val (the name goes into the manifest's `excluded_by`)."""

    name: str
    patents: frozenset[str]

    def record(self) -> dict[str, object]:
        """What the release's settings keep: the name, the count and a hash of the sorted ids."""
        digest = hashlib.sha256("\n".join(sorted(self.patents)).encode()).hexdigest()
        return {"name": self.name, "patents": len(self.patents), "sha256": digest}


def parse_exclusions(lines: Iterable[str], source: str) -> frozenset[str]:
    """Patent ids from lines of either format (blank lines and `#` comments skipped)."""
    patents = set()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _PATENT.match(line):
            patents.add(line)
        elif m := _DEEPPATENT.match(line):
            patents.add(m.group("id"))
        else:
            raise ExclusionError(
                f"{source}, line {number}: {line[:80]!r} is neither a patent id (USD0834581, one per line) nor a "
                "DeepPatent list line (I20181127/USD0834581-20181127/USD0834581-20181127-D00002.png 1); "
                "fix or remove that line")
    return frozenset(patents)


def read_exclusion_file(path: str | Path) -> ExclusionList:
    """One exclusion file; its name (without folders) is what `excluded_by` will say."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExclusionError(f"exclusion file {p}: cannot be read ({exc}); give a text file of patent ids") from exc
    patents = parse_exclusions(text.splitlines(), str(p))
    if not patents:
        raise ExclusionError(f"exclusion file {p}: lists no patent; give patent ids one per line")
    return ExclusionList(p.name, patents)


def _packaged(name: str) -> list[str]:
    return resources.files("designclip.reference").joinpath("deeppatent", name).read_text("utf-8").splitlines()


@cache
def deeppatent_lists() -> tuple[ExclusionList, ...]:
    """The packaged DeepPatent test and val patents (designclip/reference/deeppatent/README.md says whence)."""
    return tuple(ExclusionList(name, parse_exclusions(_packaged(f"{name.split('-')[1]}_patents.txt"), name))
                 for name in DEEPPATENT_LISTS)


@cache
def deeppatent_weeks() -> frozenset[dt.date]:
    """The grant weeks the DeepPatent test and val patents come from."""
    return frozenset(dt.datetime.strptime(w, "%Y%m%d").date() for w in _packaged("weeks.txt")
                     if w.strip() and not w.startswith("#"))


def default_exclusions(weeks: Iterable[dt.date]) -> tuple[ExclusionList, ...]:
    """The DeepPatent lists when any of `weeks` is one of theirs, else nothing."""
    return deeppatent_lists() if set(weeks) & deeppatent_weeks() else ()
