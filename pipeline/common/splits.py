"""Deterministic train/val/test splits by patent, so every view of a patent lands in the same split."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping

from designclip.storage.vocabulary import SPLITS

DEFAULT_RATIOS: dict[str, float] = {"train": 0.90, "val": 0.05, "test": 0.05}


def parse_ratios(text: str) -> dict[str, float]:
    """'90/5/5' or '0.8,0.1,0.1' -> {'train': .., 'val': .., 'test': ..} summing to 1."""
    parts = [float(p) for p in text.replace(",", "/").split("/") if p.strip()]
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f"split ratios {text!r}: give three non-negative numbers for train/val/test, e.g. 90/5/5")
    total = sum(parts)
    return {name: p / total for name, p in zip(SPLITS, parts, strict=True)}


def hash_unit(patent_id: str, salt: str = "") -> float:
    """A stable number in [0, 1) from the patent id (same on every machine and Python version)."""
    digest = hashlib.sha256(f"{salt}{patent_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(patent_id: str, ratios: Mapping[str, float] = DEFAULT_RATIOS, salt: str = "") -> str:
    """The split a patent belongs to under `ratios`."""
    u = hash_unit(patent_id, salt)
    edge = 0.0
    for name in SPLITS:
        edge += ratios.get(name, 0.0)
        if u < edge:
            return name
    return SPLITS[-1]


def split_by_year(grant_year: int, val_year: int, test_year: int) -> str:
    """Temporal split: the latest years held out, as a user predicting future designs would want."""
    if grant_year == test_year:
        return "test"
    if grant_year == val_year:
        return "val"
    return "train"


def fill_empty_splits(assigned: Mapping[str, str], ratios: Mapping[str, float], movable: Iterable[str] | None = None,
                      salt: str = "") -> dict[str, str]:
    """`assigned` (unit -> its hash split) with every split whose share is > 0 given at least one unit.

    A small release can leave a split empty by chance (12 patents at 90/5/5 often have no test patent). When there are
    enough units (one per such split), the unit whose hash lies nearest the empty split's interval moves there from a
    split that keeps at least one; large releases, whose splits are all filled, are unchanged. Only `movable` units
    (default: all) move; the others (e.g. excluded patents sent to test) still count where they are.
    """
    out = dict(assigned)
    can_move = set(out if movable is None else movable) & out.keys()
    wanted = [name for name in SPLITS if ratios.get(name, 0.0) > 0]
    if len(out) < len(wanted):
        return out
    edges, edge = {}, 0.0
    for name in SPLITS:
        edges[name] = (edge, edge + ratios.get(name, 0.0))
        edge += ratios.get(name, 0.0)
    for name in wanted:
        counts = Counter(out.values())
        if counts[name]:
            continue
        lo, hi = edges[name]
        donors = sorted((max(lo - u, u - hi, 0.0), unit) for unit in can_move
                        if counts[out[unit]] > 1 and out[unit] in wanted
                        for u in (hash_unit(unit, salt),))
        if donors:
            out[donors[0][1]] = name
    return out
