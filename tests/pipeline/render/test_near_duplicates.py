"""View hashes of real fixture sheets: re-scans match, distinct designs do not; grouping is exact and scales."""

from __future__ import annotations

import itertools
import time

import imagehash
import numpy as np
import pytest
from designclip.pipeline.ingest.parse import parse_grant
from designclip.pipeline.render.near_duplicates import (
    CONFIRM,
    LEGACY,
    THRESHOLD,
    NearDuplicates,
    hamming,
    near_pairs,
    view_hash,
    view_hash256,
)
from designclip.pipeline.render.sheet_image import decode_sheet, ink_box
from designclip.pipeline.render.view_image import crop_box, square_view
from PIL import Image, ImageFilter

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
    assert view_hash256(view) == "b6ea89b5eb356cdae56c300103b330dd0ed71eee3672db31c428cb11d2e0998f"
    assert view_hash(Image.new("L", (512, 512), 255)) == view_hash256(Image.new("L", (512, 512), 255)) == ""
    with pytest.raises(ValueError, match="16 hex digits"):
        hamming("abc", view_hash(view))


def test_the_fine_hash_sees_the_drawing_not_its_place_on_the_view() -> None:
    view = sheet_view("USD0929296", 1)
    ink = view.crop(view.point(lambda v: 255 if v < 250 else 0).getbbox())
    moved = Image.new("L", (600, 700), 255)
    moved.paste(ink, (3, 40))
    assert view_hash256(moved) == view_hash256(view)  # the same ink box elsewhere: the 64-bit hash would change


def test_a_rescan_matches_and_the_two_wheel_designs_do_not() -> None:
    sheets = {(p, s): sheet_gray(p, s) for p in ("USD0929296", "USD0929297") for s in (1, 2)}
    found = []
    for gray in sheets.values():
        view = view_of(gray)
        found += [(hamming(view_hash(view), view_hash(view_of(again))), hamming(view_hash256(view),
                                                                               view_hash256(view_of(again))))
                  for again in rescans(gray)]
    assert [d64 <= THRESHOLD and d256 <= CONFIRM for d64, d256 in found] == [True] * 12
    assert max(d256 for _, d256 in found) == 14
    wheel_a = [view_of(sheets["USD0929296", s]) for s in (1, 2)]
    wheel_b = [view_of(sheets["USD0929297", s]) for s in (1, 2)]
    # hand-checked (benchmarks/near_duplicates.py): one family, different drawings, 12 bits apart at the closest
    distances = sorted((hamming(view_hash(a), view_hash(b)), hamming(view_hash256(a), view_hash256(b)))
                       for a, b in itertools.product(wheel_a, wheel_b))
    assert distances == [(12, 62), (16, 80), (22, 104), (24, 122)]
    assert min(d64 for d64, _ in distances) > THRESHOLD and min(d256 for _, d256 in distances) > CONFIRM


def test_groups_follow_confirmed_views_and_chain() -> None:
    view = sheet_view("USD0929296", 1)
    base, fine = int(view_hash(view), 16), int(view_hash256(view), 16)

    def h(code: int, fine_code: int | None = None) -> tuple[str, str]:
        return f"{code:016x}", "" if fine_code is None else f"{fine_code:064x}"

    near = base ^ 0b1111  # 4 bits away; its fine hash 20 bits away
    chained = near ^ (0b111111 << 40)  # 6 bits from `near`, 10 from base; fine: 30 from near's, 50 from base's
    far = base ^ ((1 << 64) - 1)
    dups = NearDuplicates.build([
        ("USD0000003", *h(base, fine)), ("USD0000002", *h(near, fine ^ (1 << 20) - 1)),
        ("USD0000001", *h(chained, fine ^ (1 << 20) - 1 ^ ((1 << 30) - 1) << 100)),
        ("USD0000004", *h(base ^ 0b11, fine ^ (1 << 256) - 1)),  # the outline matches, the drawing does not
        ("USD0000005", ""),  # blank: no hash
        ("USD0000006", *h(far)), ("USD0000007", *h(far ^ 0xFF)),  # no fine hash: 8 bits is the older rule's match
        ("USD0000008", *h(far ^ (0x3FF << 20), fine)),  # a candidate of 6 at 10 bits, but 6 has no fine hash
    ])
    assert dups.members == {"USD0000001": ["USD0000001", "USD0000002", "USD0000003"],
                            "USD0000006": ["USD0000006", "USD0000007"]}
    assert dups.dup_group("USD0000003") == "USD0000001" and dups.dup_group("USD0000004") == ""
    assert dups.summary() == {"threshold": THRESHOLD, "confirm": CONFIRM, "groups": 2, "patents_in_groups": 5,
                              "largest_group": 3, "candidate_pairs": 8, "near_duplicate_pairs": 3,
                              "unhashed_views": 1, "legacy_views": 2}
    together = dict.fromkeys([f"USD000000{n}" for n in range(1, 9)], "train")
    assert dups.cross_split_pairs(together) == 0
    assert dups.cross_split_pairs(together | {"USD0000003": "test"}) == 1  # base-chained is not confirmed
    assert dups.cross_split_pairs(together | {"USD0000002": "val"}) == 2
    assert dups.cross_split_pairs(together | {"USD0000002": None}) == 0  # left out of the release
    assert LEGACY == 8


def test_the_64_bit_rule_alone_groups_distinct_fixture_designs_and_the_confirmed_rule_none() -> None:
    """Every drawing sheet of the 30 fixtures as a view: different designs share outlines, never drawings."""
    views = []
    for folder in sorted(patent_folder("USD0929296").parent.iterdir()):
        grant = parse_grant(next(folder.glob("*.XML")).read_bytes())
        for s in grant.sheets:
            if s["sheet"] and (folder / s["file"]).exists():
                view = view_of(decode_sheet((folder / s["file"]).read_bytes(), s["orientation"]))
                views.append((folder.name.split("-")[0], view_hash(view), view_hash256(view)))
    assert len(views) == 219
    coarse = NearDuplicates.build([(p, h) for p, h, _ in views])  # no fine hashes: the older 64-bit rule (8 bits)
    # hand-checked: a keyboard's plain bar side view and a coupling segment's upright bar, 2 bits apart
    assert coarse.members == {"USD0919622": ["USD0919622", "USD0927652"]}
    confirmed = NearDuplicates.build(views)
    assert confirmed.members == {} and confirmed.summary()["candidate_pairs"] == 11


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
    fine = [f"{int(w):064x}" for w in rng.integers(0, 2**63, size=(300_000, 4), dtype=np.uint64).dot(
        np.array([1, 2**64, 2**128, 2**192], dtype=object))]
    views = [(f"USD{i // 4:07d}", f"{int(c):016x}", f) for i, (c, f) in enumerate(zip(codes, fine, strict=True))]
    rescan = (int(codes[0]) ^ 0b101010101, f"{int(fine[0], 16) ^ (1 << 30) - 1:064x}")  # 5 and 30 bits off
    views.append(("USD9999999", f"{rescan[0]:016x}", rescan[1]))
    started = time.perf_counter()
    dups = NearDuplicates.build(views)
    assert time.perf_counter() - started < 60
    # random 64-bit hashes: about 480 of the 4.5e10 pairs are within 10 bits by chance (x 1.0e-8); none confirms
    assert dups.members == {"USD0000000": ["USD0000000", "USD9999999"]}
    assert 300 < dups.summary()["candidate_pairs"] < 700
