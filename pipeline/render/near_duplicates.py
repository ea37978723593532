"""Near-duplicate views across patents: perceptual hashes per view, and patents grouped by confirmed close views.

A re-used or re-scanned drawing sheet (continuations, divisionals, design families) must never straddle the
train/val/test splits; the release puts patents with a near-duplicate view pair into one split group. A pair is a
candidate when the 64-bit pHashes (`phash`) are within `THRESHOLD` bits, found with a multi-index over 3-4 chunks of
the hash (pigeonhole: two hashes within t bits agree within t // m bits on some chunk), so 300k views never compare
all pairs; it counts only when the 256-bit hashes of the views' ink boxes (`phash256`) are within `CONFIRM` bits. A
64-bit hash of a 512-px square view mostly encodes the outline: alone it linked distinct elongated side views.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from designclip.pipeline.common.union_find import UnionFind
from PIL import Image

HASH_BITS = 64
HASH256_BITS = 256
# Measured in benchmarks/near_duplicates.py, chosen on the re-scans of the even-numbered fixture patents: re-scans
# caught 0.929 (held-out half 0.905; the 64-bit rule alone at 8 bits: 0.915 / 0.901). Distinct designs: 11 candidate
# sheet pairs of the 30 fixtures + 15 DeepPatent2 sheets and 15 of the sample's 262 rendered views, none within 84 / 60
# bits of the 256-bit hash (the two "Wheel" designs: 12 and 62 bits); the 64-bit rule alone linked 7 sample patents.
THRESHOLD = 10
CONFIRM = 40
LEGACY = 8  # a view rendered before `phash256` was kept: its pairs count at 64-bit distance <= 8 (the earlier rule)
_SIDE = 32  # pHash: DCT of a 32x32 copy, the 8x8 lowest frequencies against their median
_LOW = 8
_SIDE256 = 64  # phash256: DCT of a 64x64 copy of the ink box, the 16x16 lowest frequencies against their median
_LOW256 = 16
_BLANK = 250  # a view whose darkest pixel is lighter than this has no drawing to hash
_CHUNKS = {3: (22, 21, 21), 4: (16, 16, 16, 16)}  # the hash in m chunks; a bucket table of 2^bits entries each
_BLOCK = 1 << 16  # rows per candidate-expansion block (bounds memory)


def _dct_matrix(n: int) -> np.ndarray:
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.cos(np.pi * (2 * x + 1) * k / (2 * n))


_DCT = _dct_matrix(_SIDE)
_DCT256 = _dct_matrix(_SIDE256)


def _dct_bits(gray: Image.Image, side: int, low: int, dct: np.ndarray) -> str:
    small = np.asarray(gray.resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64)
    coeffs = (dct @ small @ dct.T)[:low, :low]
    bits = (coeffs > np.median(coeffs)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):0{low * low // 4}x}"


def view_hash(image: Image.Image) -> str:
    """pHash of a view as 16 lowercase hex digits (the same bits as `imagehash.phash`); "" for a blank view."""
    gray = image.convert("L")
    if gray.getextrema()[0] >= _BLANK:
        return ""
    return _dct_bits(gray, _SIDE, _LOW, _DCT)


def view_hash256(image: Image.Image) -> str:
    """256-bit pHash of the view's ink box stretched square, 64 hex digits: sees the drawing, not the outline; ""
    for a blank view."""
    gray = image.convert("L")
    box = gray.point(lambda v: 255 if v < _BLANK else 0).getbbox()
    if box is None:
        return ""
    return _dct_bits(gray.crop(box), _SIDE256, _LOW256, _DCT256)


def parse_hash(text: str, bits: int = HASH_BITS) -> int | None:
    """The hash as an int; None for "" (no hash); ValueError naming the text when it is not bits/4 hex digits."""
    if not text:
        return None
    if len(text) != bits // 4:
        raise ValueError(f"perceptual hash {text!r}: expected {bits // 4} hex digits")
    return int(text, 16)


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hashes of one kind (64 or 256 bits)."""
    bits = HASH256_BITS if len(a) == HASH256_BITS // 4 else HASH_BITS
    x, y = parse_hash(a, bits), parse_hash(b, bits)
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
    chunks = _CHUNKS[3] if threshold // 3 <= threshold // 4 else _CHUNKS[4]  # fewer probes: 3 chunks up to 8 bits
    radius = threshold // len(chunks)
    shift = 0
    for width in chunks:
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


def _words256(text: str) -> tuple[int, int, int, int]:
    code = parse_hash(text, HASH256_BITS)
    if code is None:
        return (0, 0, 0, 0)
    return tuple((code >> (64 * k)) & ((1 << 64) - 1) for k in range(4))  # type: ignore[return-value]


@dataclass
class _Views:
    """Hashed views sorted by 64-bit code: `nodes` are the distinct codes, `start[i]:start[i + 1]` their views."""

    patent: np.ndarray  # patent index per view
    code: np.ndarray  # 64-bit hash per view (uint64)
    fine: np.ndarray  # 256-bit hash per view, 4 uint64 words
    has_fine: np.ndarray
    nodes: np.ndarray
    start: np.ndarray

    def confirm(self, a: np.ndarray, b: np.ndarray, confirm: int, legacy: int) -> np.ndarray:
        """Which view pairs (a, b) of different patents are near-duplicates: 256-bit rule, 64-bit where one lacks it."""
        both = self.has_fine[a] & self.has_fine[b]
        fine = np.bitwise_count(self.fine[a] ^ self.fine[b]).sum(axis=1)
        coarse = np.bitwise_count(self.code[a] ^ self.code[b])
        return (self.patent[a] != self.patent[b]) & np.where(both, fine <= confirm, coarse <= legacy)

    def expand(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every view pair of node pairs (i, j), i != j."""
        ni = self.start[i + 1] - self.start[i]
        nj = self.start[j + 1] - self.start[j]
        per = ni * nj
        total = int(per.sum())
        pair = np.repeat(np.arange(len(i)), per)
        offset = np.arange(total) - np.repeat(np.cumsum(per) - per, per)
        return self.start[i][pair] + offset // nj[pair], self.start[j][pair] + offset % nj[pair]

    def within(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every view pair that shares one 64-bit code exactly."""
        sizes = np.diff(self.start)
        for node in np.flatnonzero(sizes > 1).tolist():
            a, b = np.triu_indices(int(sizes[node]), 1)
            yield self.start[node] + a, self.start[node] + b


def _blocks(a: np.ndarray, b: np.ndarray, size: int = 4 * _BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for s in range(0, len(a), size):
        yield a[s:s + size], b[s:s + size]


def _views(rows: list[tuple[int, int, str]]) -> _Views:
    """(64-bit code, patent index, phash256 text) per hashed view, sorted by code."""
    rows.sort(key=lambda r: r[0])
    code = np.array([r[0] for r in rows], dtype=np.uint64)
    nodes, first = np.unique(code, return_index=True)
    return _Views(np.array([r[1] for r in rows], dtype=np.int64), code,
                  np.array([_words256(r[2]) for r in rows], dtype=np.uint64).reshape(-1, 4),
                  np.array([bool(r[2]) for r in rows], dtype=bool), nodes, np.append(first, len(code)))


def _node_pairs(nodes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct node pairs within the threshold, each once (the multi-index may find one pair in several chunks)."""
    found = [i * len(nodes) + j for i, j in near_pairs(nodes, threshold)]
    flat = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    return flat // len(nodes), flat % len(nodes)


@dataclass
class NearDuplicates:
    """Patents grouped by near-duplicate views; every group is named by its smallest patent id."""

    threshold: int
    confirm: int
    group_of: dict[str, str]
    members: dict[str, list[str]]  # only groups of two or more patents
    unhashed_views: int = 0
    legacy_views: int = 0  # views without a 256-bit hash: their pairs count by the 64-bit rule (<= LEGACY bits)
    candidate_pairs: int = 0  # view pairs of different patents within `threshold` 64-bit bits
    _pairs: list[tuple[str, str]] = field(default_factory=list, repr=False)  # patents of each confirmed view pair

    @classmethod
    def build(cls, views: Iterable[tuple[str, ...]], threshold: int = THRESHOLD, confirm: int = CONFIRM,
              legacy: int = LEGACY) -> NearDuplicates:
        """Group from (patent id, phash[, phash256]) per view; a view without a phash ("") groups with nothing."""
        patents: set[str] = set()
        hashed: list[tuple[int, str, str]] = []
        unhashed = 0
        for patent_id, text, *fine in views:
            patents.add(patent_id)
            code = parse_hash(text)
            if code is None:
                unhashed += 1
            else:
                hashed.append((code, patent_id, fine[0] if fine else ""))
        names = sorted(patents)
        index = {p: i for i, p in enumerate(names)}
        v = _views([(code, index[p], fine) for code, p, fine in hashed])
        uf = UnionFind(len(names))  # roots are the smallest index: the smallest patent id
        pairs: list[tuple[str, str]] = []
        candidates = 0

        def take(a: np.ndarray, b: np.ndarray) -> None:
            nonlocal candidates
            candidates += int((v.patent[a] != v.patent[b]).sum())
            keep = v.confirm(a, b, confirm, min(legacy, threshold))
            for x, y in zip(v.patent[a[keep]].tolist(), v.patent[b[keep]].tolist(), strict=True):
                pairs.append((names[x], names[y]))
                uf.union(x, y)

        for a, b in v.within():
            for blk in _blocks(a, b):
                take(*blk)
        i, j = _node_pairs(v.nodes, threshold)
        for blk in _blocks(i, j, _BLOCK):
            take(*v.expand(*blk))
        group_of = {p: names[uf.find(index[p])] for p in names}
        members: dict[str, list[str]] = defaultdict(list)
        for p in names:
            members[group_of[p]].append(p)
        return cls(threshold, confirm, group_of, {g: m for g, m in members.items() if len(m) > 1}, unhashed,
                   int((~v.has_fine).sum()), candidates, pairs)

    def group(self, patent_id: str) -> str:
        """The patent's group name (its own id when it has no near-duplicate)."""
        return self.group_of.get(patent_id, patent_id)

    def dup_group(self, patent_id: str) -> str:
        """The group name for the manifest: "" when the patent has no near-duplicate in another patent."""
        group = self.group(patent_id)
        return group if group in self.members else ""

    def cross_split_pairs(self, split_of: Mapping[str, str | None]) -> int:
        """Near-duplicate view pairs whose patents are in different splits (patents mapped to None are out)."""
        total = 0
        for a, b in self._pairs:
            sa, sb = split_of.get(a), split_of.get(b)
            total += sa is not None and sb is not None and sa != sb
        return total

    def summary(self) -> dict[str, int]:
        """Counts for stats and the card."""
        sizes = [len(m) for m in self.members.values()]
        return {"threshold": self.threshold, "confirm": self.confirm, "groups": len(sizes),
                "patents_in_groups": sum(sizes), "largest_group": max(sizes, default=0),
                "candidate_pairs": self.candidate_pairs, "near_duplicate_pairs": len(self._pairs),
                "unhashed_views": self.unhashed_views, "legacy_views": self.legacy_views}
