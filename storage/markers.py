"""Done markers, one mechanism for every stage: the unit's stats and settings in one JSON, written last, atomically.

A unit is done when its marker exists and was written with the same settings (compared by fingerprint), so a rerun
with other settings is detected and redone, and a crash before the marker leaves the unit "not done". Markers keep
their stage's file name (`I20210105.json`, `00000.stats.json`, `release.json`, `card.json`, ...) and carry
`settings` plus `settings_fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from designclip.storage.folder import DataFolder

FINGERPRINT_KEY = "settings_fingerprint"
MARKER_SUFFIX = ".stats.json"
"""Per-shard markers (render, caption, embed): `00000.stats.json`."""
MARKER_NAMES = ("release.json", "train.json", "card.json", "report.json", "encoder.json")
"""Markers (and the encoder record) named alike in every folder of their kind."""


def is_marker(rel: str) -> bool:
    """Whether a file under the data root (relative path) is a done marker: removed first when work is forgotten."""
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(MARKER_SUFFIX) or name in MARKER_NAMES or rel.lstrip("/").startswith("_stats/")


def remove_tree(folder: DataFolder, rel: str) -> bool:
    """Delete a file or folder under the root, its done markers first; returns whether there was anything."""
    return folder.remove_tree(rel, first=is_marker)


RUN_TIME_KEYS = frozenset({"started_at", "finished_at", "duration_s", "seconds", "model_seconds", "wall_s",
                           "resumed_rows", "batch_sizes"})
"""Marker fields that say when and how fast a unit ran (or how it was resumed), not what it made."""


def content_sha256(body: bytes) -> str:
    """sha256 of a JSON marker without its run-time fields: two runs that made the same outputs hash alike."""
    record = json.loads(body)
    if isinstance(record, dict):
        record = {k: v for k, v in record.items() if k not in RUN_TIME_KEYS}
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """A short stable digest of JSON-able settings (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DoneMarker:
    """The done marker of one unit of work at `rel` under the data root."""

    folder: DataFolder
    rel: str

    def read(self) -> dict[str, Any] | None:
        """The marker's record, or None when the unit never finished."""
        if not self.folder.exists(self.rel):
            return None
        return self.folder.read_json(self.rel)

    def done(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The record when the unit finished with these settings (any settings when None), else None."""
        record = self.read()
        if record is None or settings is None:
            return record
        if FINGERPRINT_KEY in record:
            return record if record[FINGERPRINT_KEY] == settings_fingerprint(settings) else None
        return record if record.get("settings") == dict(settings) else None  # a marker from before fingerprints

    def write(self, stats: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write the marker last (atomically): the stats, and the settings with their fingerprint when given."""
        record = dict(stats)
        if settings is not None:
            record["settings"] = dict(settings)
            record[FINGERPRINT_KEY] = settings_fingerprint(settings)
        self.folder.write_json(self.rel, record)
        return record

    def remove(self) -> None:
        """Forget the unit (first, before its outputs, so an interrupted removal never leaves a stale marker)."""
        if self.folder.exists(self.rel):
            self.folder.remove(self.rel)
