"""Measure the near-duplicate threshold: Hamming distances of view pHashes for re-scans versus distinct designs.

Views are made as the render stage makes a one-FIG. sheet's view (ink box, 3 % margin, 512 px square). Positives:
every drawing sheet of the 30 fixture patents against simulated re-scans of itself (re-threshold, 1-2 px shift,
scale 0.97/1.03, rotation 0.5 deg, speckle noise, a 200 dpi scan, all of them at once).
Negatives: every pair of sheets of two different patents (the fixtures plus the 15 DeepPatent2 sheets), and
the two "Wheel" patents USD0929296/USD0929297 (one family, different drawings).
Usage: python benchmarks/near_duplicates.py [--patents USD0909824 ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.near_duplicates import THRESHOLD, hamming, view_hash  # noqa: E402
from pipeline.parse import parse_grant  # noqa: E402
from pipeline.sheet_image import decode_sheet, ink_box  # noqa: E402
from pipeline.view_image import crop_box, square_view  # noqa: E402

SAMPLE = ROOT / "designclip" / "sample" / "patents"
DEEPPATENT2 = ROOT.parent / "shared" / "fixtures" / "deeppatent2-sheets"
WHEELS = ("USD0929296", "USD0929297")


def sheet_view(gray: Image.Image, size: int = 512) -> Image.Image:
    """The view the render stage makes of a one-FIG. sheet."""
    box = ink_box(gray) or (0, 0, *gray.size)
    return square_view(gray, crop_box(box, gray.size, 0.03), size)


def binary(gray: Image.Image, level: int = 128) -> Image.Image:
    """Back to 1-bit ink/paper, as a scanner writes a CCITT G4 TIFF."""
    return gray.point(lambda v: 0 if v < level else 255)


def rescale(gray: Image.Image, factor: float) -> Image.Image:
    w, h = gray.size
    return binary(gray.resize((round(w * factor), round(h * factor)), Image.Resampling.LANCZOS))


def shift(gray: Image.Image, dx: int, dy: int) -> Image.Image:
    out = Image.new("L", gray.size, 255)
    out.paste(gray, (dx, dy))
    return out


def rotate(gray: Image.Image, degrees: float) -> Image.Image:
    return binary(gray.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=255))


def speckle(gray: Image.Image, rng: np.random.Generator, share: float = 0.002) -> Image.Image:
    """Dust inside the drawing's box (black dots on paper, white dots in ink), as a dirty scanner glass leaves."""
    pixels = np.asarray(gray).copy()
    box = ink_box(gray) or (0, 0, *gray.size)
    region = pixels[box[1]:box[3], box[0]:box[2]]
    flip = rng.random(region.shape) < share
    region[flip] = 255 - region[flip]
    return Image.fromarray(pixels)


def transforms(rng: np.random.Generator) -> dict[str, Callable[[Image.Image], Image.Image]]:
    return {
        "re-threshold darker (ink +1 px)": lambda g: g.filter(ImageFilter.MinFilter(3)),
        "re-threshold lighter (ink -1 px)": lambda g: binary(g.filter(ImageFilter.GaussianBlur(0.6)), 100),
        "much lighter (fine hatching lost)": lambda g: binary(g.filter(ImageFilter.GaussianBlur(1)), 90),
        "shift 2,1 px": lambda g: shift(g, 2, 1),
        "scale 0.97": lambda g: rescale(g, 0.97),
        "scale 1.03": lambda g: rescale(g, 1.03),
        "rotate 0.5 deg": lambda g: rotate(g, 0.5),
        "speckle 0.2 %": lambda g: speckle(g, rng),
        "200 dpi scan": lambda g: rescale(g, 2 / 3),
        "all at once": lambda g: speckle(rotate(rescale(shift(g, 1, 2), 1.02), -0.5), rng),
    }


def fixture_sheets(prefixes: list[str] | None) -> dict[str, list[tuple[int, Image.Image]]]:
    """Upright gray drawing sheets D00001.. per fixture patent (D00000, the front page, shows several FIG.s)."""
    out = {}
    for folder in sorted(SAMPLE.iterdir()):
        pid = folder.name.split("-")[0]
        if prefixes and not any(pid.startswith(p) for p in prefixes):
            continue
        grant = parse_grant(next(folder.glob("*.XML")).read_bytes())
        out[pid] = [(s["sheet"], decode_sheet((folder / s["file"]).read_bytes(), s.get("orientation")))
                    for s in grant.sheets if s["sheet"] != 0 and (folder / s["file"]).exists()]
    return out


def describe(values: list[int]) -> str:
    if not values:
        return "none"
    a = np.array(values)
    return (f"n={len(a)} min={a.min()} p5={np.percentile(a, 5):.0f} median={np.median(a):.0f} "
            f"p95={np.percentile(a, 95):.0f} max={a.max()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patents", nargs="*", help="fixture patent id prefixes (default: all 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    sheets = fixture_sheets(args.patents)
    drawing = {pid: {no: view_hash(sheet_view(g)) for no, g in group} for pid, group in sheets.items()}

    print(f"threshold in pipeline/near_duplicates.py: {THRESHOLD}\n")
    print("Re-scans of the same sheet (must be <= threshold):")
    worst = 0
    for name, fn in transforms(rng).items():
        d = [hamming(drawing[pid][no], view_hash(sheet_view(fn(g)))) for pid, group in sheets.items()
             for no, g in group]
        worst = max(worst, max(d))
        over = sum(x > THRESHOLD for x in d)
        print(f"  {name:34s} {describe(d)}  over threshold: {over}")

    within = [hamming(a, b) for hs in drawing.values() for a, b in itertools.combinations(hs.values(), 2)]
    print(f"\nTwo different sheets of one patent (other views of one design): {describe(within)}")

    others = {f"dp2:{p.stem}": view_hash(sheet_view(Image.open(p).convert("L")))
              for p in sorted(DEEPPATENT2.glob("*.png"))} if DEEPPATENT2.exists() else {}
    flat = [(pid, h) for pid, hs in drawing.items() for h in hs.values()] + [(k, h) for k, h in others.items()]
    cross = [hamming(a, b) for (pa, a), (pb, b) in itertools.combinations(flat, 2)
             if pa.split("-")[0] != pb.split("-")[0]]
    hist = np.bincount(np.array(cross), minlength=HASH_BITS_PLUS)[:HASH_BITS_PLUS]
    print(f"\nSheets of two different patents ({len(drawing)} fixtures + {len(others)} DeepPatent2 sheets): "
          f"{describe(cross)}")
    print(f"  pairs at distance <= 8: {int(hist[:9].sum())}, <= 10: {int(hist[:11].sum())}, "
          f"<= 12: {int(hist[:13].sum())}, <= 14: {int(hist[:15].sum())}")
    print(f"  histogram 0..20: {hist[:21].tolist()}")
    close = sorted((hamming(a, b), pa, pb) for (pa, a), (pb, b) in itertools.combinations(flat, 2)
                   if pa.split("-")[0] != pb.split("-")[0])[:5]
    print(f"  closest pairs: {close}")

    if all(w in drawing for w in WHEELS):
        a, b = (drawing[w] for w in WHEELS)
        pairs = {f"{WHEELS[0]} D{x:05d} / {WHEELS[1]} D{y:05d}": hamming(a[x], b[y]) for x in a for y in b}
        print(f"\nWheels (one family, different drawings): {pairs}")
    print(f"\nlargest re-scan distance: {worst}; ({time.perf_counter() - started:.0f} s)")


HASH_BITS_PLUS = 65

if __name__ == "__main__":
    main()
