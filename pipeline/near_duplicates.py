"""Near-duplicate views across patents: a 64-bit perceptual hash per view, and patents grouped by close hashes.

A re-used or re-scanned drawing sheet (continuations, divisionals, design families) must never straddle the
train/val/test splits; the release puts patents whose views hash within `THRESHOLD` bits into one split group.
Candidate pairs come from a multi-index over three 21-22 bit chunks of the hash (pigeonhole: two hashes within t bits
agree within t // 3 bits on some chunk), so grouping 300k views never compares all pairs.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

HASH_BITS = 64
# Measured in benchmarks/near_duplicates.py: simulated re-scans of the fixture sheets move a median 0-4 bits (about
# 90 % within 8); of 24,599 view pairs of different fixture patents one is within 8 (two plain upright bars, 2 bits),
# the next are at 10; the two "Wheel" designs of one family are 12 bits apart at their closest.
THRESHOLD = 8
_SIDE = 32  # pHash: DCT of a 32x32 copy, the 8x8 lowest frequencies against their median
_LOW = 8
_BLANK = 250  # a view whose darkest pixel is lighter than this has no drawing to hash
_CHUNK_BITS = (22, 21, 21)  # the hash in three chunks; a bucket table of 2^22 entries each
_BLOCK = 1 << 16  # rows per candidate-expansion block (bounds memory)


def _dct_matrix(n: int) -> np.ndarray:
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.cos(np.pi * (2 * x + 1) * k / (2 * n))


_DCT = _dct_matrix(_SIDE)


def view_hash(image: Image.Image) -> str:
    """pHash of a view as 16 lowercase hex digits (the same bits as `imagehash.phash`); "" for a blank view."""
    gray = image.convert("L")
    if gray.getextrema()[0] >= _BLANK:
        return ""
    small = np.asarray(gray.resize((_SIDE, _SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT @ small @ _DCT.T)[:_LOW, :_LOW]
    bits = (low > np.median(low)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def parse_hash(text: str) -> int | None:
    """The hash as an int; None for "" (no hash); ValueError naming the text when it is not 16 hex digits."""
    if not text:
        return None
    if len(text) != HASH_BITS // 4:
        raise ValueError(f"perceptual hash {text!r}: expected {HASH_BITS // 4} hex digits")
    return int(text, 16)


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hashes."""
    x, y = parse_hash(a), parse_hash(b)
    if x is None or y is None:
        raise ValueError("hamming distance of an empty hash (a blank view has none)")
    return (x ^ y).bit_count()


def _flips(bits: int, radius: int) -> np.ndarray:
    """Every `bits`-bit mask with at most `radius` bits set (0 first)."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << i for i in combo) for combo in itertools.combinations(range(bits), r)]
    return np.array(masks, dtype=np.int64)


def near_pairs(codes: np.ndarray, threshold: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index pairs (i < j) of distinct `codes` (unique uint64) within `threshold` bits, in blocks; may repeat."""
    n = len(codes)
    if n < 2 or threshold < 1:
        return
    radius = threshold // len(_CHUNK_BITS)
    shift = 0
    for width in _CHUNK_BITS:
        keys = ((codes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        shift += width
        order = np.argsort(keys, kind="stable")
        starts = np.zeros((1 << width) + 1, dtype=np.int64)  # counting sort: bucket k is order[starts[k]:starts[k+1]]
        np.cumsum(np.bincount(keys, minlength=1 << width), out=starts[1:])
        for flip in _flips(width, radius):
            for begin in range(0, n, _BLOCK):
                probe = keys[begin:begin + _BLOCK] ^ flip
                lo = starts[probe]
                counts = starts[probe + 1] - lo
                total = int(counts.sum())
                if not total:
                    continue
                i = np.repeat(np.arange(begin, begin + len(probe)), counts)
                j = order[np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)]
                keep = (i < j) & (np.bitwise_count(codes[i] ^ codes[j]) <= threshold)
                if keep.any():
                    yield i[keep], j[keep]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the root is the smallest index: the smallest patent id


@dataclass
class NearDuplicates:
    """Patents grouped by near-duplicate views; every group is named by its smallest patent id."""

    threshold: int
    group_of: dict[str, str]
    members: dict[str, list[str]]  # only groups of two or more patents
    unhashed_views: int = 0
    _code_patents: list[list[str]] = field(default_factory=list, repr=False)
    _pairs: list[tuple[int, int]] = field(default_factory=list, repr=False)

    @classmethod
    def build(cls, views: Iterable[tuple[str, str]], threshold: int = THRESHOLD) -> NearDuplicates:
        """Group from (patent id, view hash) pairs; a view without a hash ("") groups with nothing."""
        patents: set[str] = set()
        by_code: dict[int, list[str]] = defaultdict(list)
        unhashed = 0
        for patent_id, text in views:
            patents.add(patent_id)
            code = parse_hash(text)
            if code is None:
                unhashed += 1
            else:
                by_code[code].append(patent_id)
        names = sorted(patents)
        index = {p: i for i, p in enumerate(names)}
        uf = _UnionFind(len(names))
        codes = np.array(sorted(by_code), dtype=np.uint64)
        code_patents = [by_code[int(c)] for c in codes]
        for owners in code_patents:
            for p in owners[1:]:
                uf.union(index[owners[0]], index[p])
        pairs: set[tuple[int, int]] = set()
        for i, j in near_pairs(codes, threshold):
            for a, b in zip(i.tolist(), j.tolist(), strict=True):
                pairs.add((a, b))
                uf.union(index[code_patents[a][0]], index[code_patents[b][0]])
        group_of = {p: names[uf.find(index[p])] for p in names}
        members: dict[str, list[str]] = defaultdict(list)
        for p in names:
            members[group_of[p]].append(p)
        return cls(threshold, group_of, {g: m for g, m in members.items() if len(m) > 1}, unhashed,
                   code_patents, sorted(pairs))

    def group(self, patent_id: str) -> str:
        """The patent's group name (its own id when it has no near-duplicate)."""
        return self.group_of.get(patent_id, patent_id)

    def dup_group(self, patent_id: str) -> str:
        """The group name for the manifest: "" when the patent has no near-duplicate in another patent."""
        group = self.group(patent_id)
        return group if group in self.members else ""

    def cross_split_pairs(self, split_of: Mapping[str, str | None]) -> int:
        """View pairs within the threshold whose patents are in different splits (patents mapped to None are out)."""

        def tally(owners: list[str]) -> dict[str, int]:
            out: dict[str, int] = defaultdict(int)
            for p in owners:
                if (s := split_of.get(p)) is not None:
                    out[s] += 1
            return out

        counts = [tally(owners) for owners in self._code_patents]
        total = 0
        for c in counts:  # views sharing one hash exactly
            values = list(c.values())
            total += (sum(values) ** 2 - sum(v * v for v in values)) // 2
        for a, b in self._pairs:
            ca, cb = counts[a], counts[b]
            total += sum(ca[s] * cb[t] for s in ca for t in cb if s != t)
        return total

    def summary(self) -> dict[str, int]:
        """Counts for stats and the card."""
        sizes = [len(m) for m in self.members.values()]
        return {"threshold": self.threshold, "groups": len(sizes), "patents_in_groups": sum(sizes),
                "largest_group": max(sizes, default=0), "unhashed_views": self.unhashed_views}
