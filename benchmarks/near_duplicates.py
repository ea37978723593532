"""Measure the near-duplicate rule: re-scans caught (64-bit candidate, 256-bit confirm) versus distinct designs linked.

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
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from designclip.pipeline.ingest.parse import parse_grant
from designclip.pipeline.render.near_duplicates import (
    CONFIRM,
    HASH256_BITS,
    LEGACY,
    THRESHOLD,
    NearDuplicates,
    hamming,
    view_hash,
    view_hash256,
)
from designclip.pipeline.render.sheet_image import decode_sheet, ink_box
from designclip.pipeline.render.view_image import crop_box, square_view
from PIL import Image, ImageFilter
from support import SAMPLE

ROOT = Path(__file__).resolve().parents[1]
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


def caught(pairs: list[tuple[int, int]], t: int, c: int) -> float:
    return float(np.mean([d64 <= t and d256 <= c for d64, d256 in pairs])) if pairs else float("nan")


def false_groups(flat: list[tuple[str, str, str]], t: int, c: int) -> tuple[int, int, list[list[str]]]:
    """Cross-patent candidate pairs, confirmed pairs and the groups they form among distinct designs."""
    dups = NearDuplicates.build(flat, t, c)
    s = dups.summary()
    return s["candidate_pairs"], s["near_duplicate_pairs"], sorted(dups.members.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patents", nargs="*", help="fixture patent id prefixes (default: all 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    sheets = fixture_sheets(args.patents)
    views = {pid: {no: sheet_view(g) for no, g in group} for pid, group in sheets.items()}
    drawing = {pid: {no: (view_hash(v), view_hash256(v)) for no, v in vs.items()} for pid, vs in views.items()}
    tune = set(sorted(drawing)[::2])  # thresholds are chosen on these (even-numbered) patents; the rest is held out

    print(f"rule in pipeline/render/near_duplicates.py: "
          f"candidate 64-bit <= {THRESHOLD}, confirmed 256-bit <= {CONFIRM} "
          f"(older shards without phash256: 64-bit <= {LEGACY})\n")
    rescans: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for name, fn in transforms(rng).items():
        for pid, group in sheets.items():
            for no, g in group:
                v = sheet_view(fn(g))
                d = (hamming(drawing[pid][no][0], view_hash(v)), hamming(drawing[pid][no][1], view_hash256(v)))
                rescans.setdefault(name, {}).setdefault("tune" if pid in tune else "holdout", []).append(d)
    others = {f"dp2:{p.stem}": sheet_view(Image.open(p).convert("L"))
              for p in sorted(DEEPPATENT2.glob("*.png"))} if DEEPPATENT2.exists() else {}
    flat = [(pid, *h) for pid, hs in drawing.items() for h in hs.values()]
    flat += [(k, view_hash(v), view_hash256(v)) for k, v in others.items()]

    print("Grid on the tune half (share of re-scans caught, mean over kinds | cross-patent pairs confirmed):")
    for t in (8, 10):
        cells = []
        for c in (24, 32, 40, 48, 56):
            share = np.mean([caught(parts.get("tune", []), t, c) for parts in rescans.values()])
            cells.append(f"C={c}: {share:.3f} | {false_groups(flat, t, c)[1]}")
        print(f"  T={t}: " + "; ".join(cells))
    print(f"\nRe-scans caught at T={THRESHOLD}, C={CONFIRM} (64-bit alone at {LEGACY}, the earlier rule):")
    for name, parts in rescans.items():
        row = [f"{part} {caught(parts.get(part, []), THRESHOLD, CONFIRM):.3f} "
               f"({caught(parts.get(part, []), LEGACY, HASH256_BITS):.3f})" for part in ("tune", "holdout")]
        print(f"  {name:34s} " + "  ".join(row))
    for part in ("tune", "holdout"):
        mean = np.mean([caught(p.get(part, []), THRESHOLD, CONFIRM) for p in rescans.values()])
        old = np.mean([caught(p.get(part, []), LEGACY, HASH256_BITS) for p in rescans.values()])
        print(f"  {part:34s} mean over kinds {mean:.3f} (64-bit alone: {old:.3f})")

    candidates, confirmed, groups = false_groups(flat, THRESHOLD, CONFIRM)
    old = NearDuplicates.build([(p, h) for p, h, _ in flat], LEGACY)
    print(f"\nSheets of other patents ({len(drawing)} fixtures, {len(others)} DeepPatent2 sheets, {len(flat)} views)"
          f": candidates {candidates}, confirmed {confirmed}, false groups {groups} "
          f"(64-bit alone at {LEGACY}: {old.summary()['near_duplicate_pairs']} pairs, groups "
          f"{sorted(old.members.values())})")
    cand = sorted((hamming(a, b), hamming(fa, fb), pa, pb) for (pa, a, fa), (pb, b, fb)
                  in itertools.combinations(flat, 2) if pa != pb and hamming(a, b) <= THRESHOLD)
    print(f"  candidates' 256-bit distances: {sorted(x[1] for x in cand)}")
    if all(w in drawing for w in WHEELS):
        a, b = (drawing[w] for w in WHEELS)
        pairs = {f"D{x:05d}/D{y:05d}": (hamming(a[x][0], b[y][0]), hamming(a[x][1], b[y][1])) for x in a for y in b}
        print(f"\nWheels {WHEELS[0]}/{WHEELS[1]} (one family, different drawings), (64-bit, 256-bit): {pairs}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
