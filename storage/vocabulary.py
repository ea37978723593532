"""Words every layer shares (split names, caption records, archive names, sizes), kept at the ground floor.

Stages re-export these from their own modules (`pipeline.common.splits.SPLITS`, `pipeline.caption.captioner`,
`pipeline.ingest.archives`, ...), so storage never has to import a stage to name what it stores.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

SPLITS = ("train", "val", "test")
"""The splits of a release, in the order they are written and listed."""

BACKENDS = ("metadata", "llava", "vllm")
"""The caption backends (what `--captioner` accepts)."""

ARCHIVE_NAME = re.compile(r"^I(?P<date>\d{8})(?:_r(?P<rev>\d+))?\.(?P<ext>tar|zip|ZIP)$")


class ReleaseError(ValueError):
    """Settings or inputs a release cannot be built from; the message says what to change."""


@dataclass(frozen=True)
class CaptionRequest:
    """One view to caption: its sample key, its PNG bytes and its sample json (title, view, FIG. description)."""

    key: str
    png: bytes
    meta: dict[str, Any]


@dataclass(frozen=True)
class CaptionResult:
    """One caption, or the reason there is none (`error`): a bad image is a recorded failure, never fatal."""

    key: str
    caption: str | None
    prompt: str | None = None
    error: str | None = None
    seconds: float = 0.0  # this sample's share of its batch's wall time
    output_tokens: int | None = None
    batch_size: int = 1


def parse_archive_name(name: str) -> tuple[dt.date, int] | None:
    """`I20251230_r1.tar` -> (2025-12-30, 1); None for names that are not weekly grant archives."""
    m = ARCHIVE_NAME.match(name)
    if not m:
        return None
    try:
        week = dt.datetime.strptime(m["date"], "%Y%m%d").date()
    except ValueError:
        return None
    return week, int(m["rev"] or 0)


def human_bytes(nbytes: float) -> str:
    """Human size: 1.50 GiB, 12.3 MiB, 40.0 KiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.{2 if unit == 'GiB' else 1}f} {unit}"
    return f"{nbytes / 2**10:.1f} KiB"
