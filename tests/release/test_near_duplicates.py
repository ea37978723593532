"""View hashes of real fixture sheets: re-scans match, distinct designs do not; grouping is exact and scales."""

from __future__ import annotations

import itertools
import time

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipeline.near_duplicates import THRESHOLD, NearDuplicates, hamming, near_pairs, view_hash
from pipeline.parse import parse_grant
from pipeline.sheet_image import decode_sheet, ink_box
from pipeline.view_image import crop_box, square_view
from tests.conftest import patent_folder


def sheet_gray(patent: str, sheet: int) -> Image.Image:
    """A real fixture drawing sheet, upright, 8-bit gray."""
    folder = patent_folder(patent)
    info = next(s for s in parse_grant(next(folder.glob("*.XML")).read_bytes()).sheets if s["sheet"] == sheet)
    return decode_sheet((folder / info["file"]).read_bytes(), info["orientation"])


def view_of(gray: Image.Image) -> Image.Image:
    """The view the render stage makes of a one-FIG. sheet."""
    return square_view(gray, crop_box(ink_box(gray) or (0, 0, *gray.size), gray.size, 0.03), 512)


def sheet_view(patent: str, sheet: int) -> Image.Image:
    return view_of(sheet_gray(patent, sheet))


def rescans(gray: Image.Image) -> list[Image.Image]:
    """The sheet scanned again: turned 0.5 degrees and shifted, at 200 dpi, lighter (thinner lines); 1 bit each."""
    def binary(im: Image.Image, level: int = 128) -> Image.Image:
        return im.point(lambda v: 0 if v < level else 255)

    w, h = gray.size
    return [binary(gray.rotate(0.5, Image.Resampling.BICUBIC, translate=(2, 1), expand=True, fillcolor=255)),
            binary(gray.resize((w * 2 // 3, h * 2 // 3), Image.Resampling.LANCZOS)),
            binary(gray.filter(ImageFilter.GaussianBlur(0.6)), 100)]


def test_the_hash_is_imagehash_phash_and_a_blank_view_has_none() -> None:
    view = sheet_view("USD0929296", 1)
    assert view_hash(view) == str(imagehash.phash(view)) == "b689e16cc7321337"
    assert len(view_hash(view)) == 16
    assert view_hash(Image.new("L", (512, 512), 255)) == ""
    with pytest.raises(ValueError, match="16 hex digits"):
        hamming("abc", view_hash(view))


def test_a_rescan_matches_and_the_two_wheel_designs_do_not() -> None:
    sheets = {(p, s): sheet_gray(p, s) for p in ("USD0929296", "USD0929297") for s in (1, 2)}
    for gray in sheets.values():
        original = view_hash(view_of(gray))
        assert [hamming(original, view_hash(view_of(again))) <= THRESHOLD for again in rescans(gray)] == [True] * 3
    wheel_a = [view_of(sheets["USD0929296", s]) for s in (1, 2)]
    wheel_b = [view_of(sheets["USD0929297", s]) for s in (1, 2)]
    # hand-checked (benchmarks/near_duplicates.py): one family, different drawings, 12 bits apart at the closest
    distances = sorted(hamming(view_hash(a), view_hash(b)) for a, b in itertools.product(wheel_a, wheel_b))
    assert distances == [12, 16, 22, 24]
    assert min(distances) > THRESHOLD


def test_groups_follow_near_views_and_chain() -> None:
    base = int(view_hash(sheet_view("USD0929296", 1)), 16)
    near = f"{base ^ 0b1111:016x}"  # 4 bits away
    chained = f"{base ^ 0b1111 ^ (0b111111 << 40):016x}"  # 6 bits from `near`, 10 from base
    far = f"{base ^ ((1 << 64) - 1):016x}"
    dups = NearDuplicates.build([("USD0000003", f"{base:016x}"), ("USD0000002", near), ("USD0000001", chained),
                                 ("USD0000004", far), ("USD0000005", "")])
    assert dups.members == {"USD0000001": ["USD0000001", "USD0000002", "USD0000003"]}
    assert dups.dup_group("USD0000003") == "USD0000001" and dups.dup_group("USD0000004") == ""
    assert dups.summary() == {"threshold": THRESHOLD, "groups": 1, "patents_in_groups": 3, "largest_group": 3,
                              "unhashed_views": 1}
    together = dict.fromkeys(["USD0000001", "USD0000002", "USD0000003", "USD0000004"], "train")
    assert dups.cross_split_pairs(together) == 0
    assert dups.cross_split_pairs(together | {"USD0000003": "test"}) == 1  # only base-near is within 8 bits
    assert dups.cross_split_pairs(together | {"USD0000002": "val"}) == 2


@pytest.mark.parametrize("threshold", [0, 3, 5, 8, 11])
def test_multi_index_finds_exactly_the_pairs_brute_force_finds(threshold: int) -> None:
    rng = np.random.default_rng(threshold)
    seeds = rng.integers(0, 2**63, size=300, dtype=np.uint64)
    flips = [np.uint64(sum(1 << int(b) for b in rng.choice(64, size=rng.integers(0, 14), replace=False)))
             for _ in range(300)]
    codes = np.unique(np.concatenate([seeds, seeds ^ np.array(flips, dtype=np.uint64)]))
    found = {(int(a), int(b)) for i, j in near_pairs(codes, threshold) for a, b in zip(i, j, strict=True)}
    brute = {(a, b) for a, b in itertools.combinations(range(len(codes)), 2)
             if bin(int(codes[a]) ^ int(codes[b])).count("1") <= threshold}
    assert found == brute
    assert threshold < 5 or len(brute) > 20  # the planted pairs are there to be found


def test_grouping_300k_views_takes_seconds_not_hours() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2**63, size=300_000, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 300_000,
                                                                                              dtype=np.uint64)
    views = [(f"USD{i // 4:07d}", f"{int(c):016x}") for i, c in enumerate(codes)]
    views.append(("USD9999999", f"{int(codes[0]) ^ 0b101:016x}"))  # a re-scan of patent 0's first view
    started = time.perf_counter()
    dups = NearDuplicates.build(views)
    assert time.perf_counter() - started < 60
    assert dups.members["USD0000000"] == ["USD0000000", "USD9999999"]
    # random 64-bit hashes: about 12 of the 4.5e10 pairs are within 8 bits by chance (x 2.8e-10); each is real
    by_patent: dict[str, list[str]] = {}
    for pid, h in views:
        by_patent.setdefault(pid, []).append(h)
    assert len(dups.members) < 40
    for group in dups.members.values():
        assert len(group) == 2
        a, b = (by_patent[p] for p in group)
        assert min(hamming(x, y) for x in a for y in b) <= THRESHOLD
