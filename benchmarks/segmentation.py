"""FIG. segmentation quality, fixtures and DeepPatent2 sheets reported apart, tune / holdout / all.

A FIG. is right when its view is on its true sheet and the view's crop holds that FIG. and no other
(pipeline/render/segment_eval.py: covers >= 90 % of its true box, <= 10 % of any other FIG.'s). Targets per set:
>= 97 % right, 0 unflagged wrong views, 0 views showing two FIG.s.
Fixtures: the 30 patents of tests/data/segmentation_truth.json through pipeline.render.patent_views.render_patent.
DeepPatent2: the 15 sheets of tests/data/deeppatent2-sheets/ through pipeline.render.segment.plan_regions, each sheet
decoded with its truth orientation as the render stage would (--as-stored: as the PNG is stored, landscape
sheets not turned, so their labels read bottom-to-top). Held-out items print counts only (--show-holdout lists them).
Usage: python benchmarks/segmentation.py [--set fixtures|deeppatent2] [--patents USD0909824 ...] [--as-stored]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from designclip.pipeline.render.patent_views import PatentInput, RenderOptions, render_patent
from designclip.pipeline.render.segment_eval import (
    PARTS,
    Tally,
    as_stored,
    fixture_truth,
    score_views,
    segment_sheet,
    sheet_number,
    sheet_truth,
    views_from_metas,
)
from designclip.pipeline.render.sheet_image import decode_sheet
from PIL import Image, ImageDraw
from support import SAMPLE

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"  # the hand-checked truth (data files, not code)


def run_fixtures(wanted: list[str] | None) -> dict[str, Tally]:
    truth = json.loads((DATA / "segmentation_truth.json").read_text())["patents"]
    tallies = {part: Tally() for part in PARTS}
    for folder, entry in sorted(truth.items()):
        if wanted and not any(folder.startswith(p) for p in wanted):
            continue
        views = render_patent(PatentInput.from_grant_folder(SAMPLE / folder), RenderOptions(size=64))
        score_views(tallies[entry["part"]], folder.split("-")[0], fixture_truth(entry),
                    views_from_metas(s.meta for s in views.samples))
    return tallies


def annotated(gray: Image.Image, views: list, truth: list, width: int = 420) -> Image.Image:
    """The sheet small, true FIG. boxes in blue, our crops in green (red when flagged), our label boxes in orange."""
    scale = width / gray.width
    small = gray.resize((width, round(gray.height * scale))).convert("RGB")
    draw = ImageDraw.Draw(small)

    def box(b: tuple, colour: str, w: int) -> None:
        draw.rectangle([round(v * scale) for v in b], outline=colour, width=w)

    for fig in truth:
        box(fig.box, "blue", 1)
    for view in views:
        box(view.crop, "red" if view.flagged else "green", 2)
        if view.label_box:
            box(view.label_box, "orange", 2)
        draw.text((round(view.crop[0] * scale) + 3, round(view.crop[1] * scale) + 3), f"FIG. {view.fig}", fill="green")
    return small


def write_picture(path: Path, pictures: list[Image.Image], columns: int = 4) -> None:
    """The annotated sheets side by side, as one PNG to look at."""
    cell_w = max(p.width for p in pictures)
    cell_h = max(p.height for p in pictures)
    rows = -(-len(pictures) // columns)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    for i, picture in enumerate(pictures):
        sheet.paste(picture, ((i % columns) * cell_w, (i // columns) * cell_h))
    sheet.save(path)
    print(f"annotated tune sheets (blue: truth, green: our crops, red: flagged, orange: labels read): {path}")


def run_deeppatent2(wanted: list[str] | None, stored: bool, pictures: list | None = None) -> dict[str, Tally]:
    truth = json.loads((DATA / "segmentation_truth_deeppatent2.json").read_text())["sheets"]
    margin = RenderOptions().margin
    tallies = {part: Tally() for part in PARTS}
    for name, entry in sorted(truth.items()):
        if wanted and not any(name.startswith(p) for p in wanted):
            continue
        entry = as_stored(entry) if stored else entry
        gray = decode_sheet((DATA / "deeppatent2-sheets" / f"{name}.png").read_bytes(), entry["orientation"])
        if list(gray.size) != entry["size"]:
            raise SystemExit(f"{name}: decoded size {gray.size} is not the truth's {entry['size']}; "
                             "tests/data/deeppatent2-sheets/ and the truth file disagree")
        figs = [f["fig"] for f in entry["figs"]]
        views = segment_sheet(gray, sheet_number(name), figs, margin)
        score_views(tallies[entry["part"]], name, sheet_truth(name, entry), views)
        if pictures is not None and entry["part"] == "tune":  # never draw the held-out sheets
            pictures.append(annotated(gray, views, sheet_truth(name, entry)))
    return tallies


def report(title: str, tallies: dict[str, Tally], show_holdout: bool) -> None:
    print(f"== {title}")
    every = tallies["tune"].merge(tallies["holdout"])
    for part, tally in (*tallies.items(), ("all", every)):
        print(f"  {part:8s} {tally.summary()}")
    for part, tally in tallies.items():
        if part == "holdout" and not show_holdout:
            continue
        for heading, lines in (("UNFLAGGED WRONG", tally.unflagged_wrong), ("views showing two FIG.s", tally.two_figs),
                               ("wrong", tally.wrong), ("labels not found", tally.labels_missed)):
            if lines:
                print(f"  {part} {heading}:")
                for line in lines:
                    print("    -", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("fixtures", "deeppatent2"), help="one set only (default: both)")
    parser.add_argument("--patents", nargs="*", help="patent id / sheet name prefixes (default: every item)")
    parser.add_argument("--as-stored", action="store_true", help="DeepPatent2 sheets as stored, landscape not turned")
    parser.add_argument("--show-holdout", action="store_true", help="list the held-out items' failures too")
    parser.add_argument("--picture", type=Path, help="write the tune DeepPatent2 sheets, annotated, to this PNG")
    args = parser.parse_args()
    if args.set in (None, "fixtures"):
        started = time.perf_counter()
        tallies = run_fixtures(args.patents)
        report(f"fixtures: 30 real 2021 patents ({time.perf_counter() - started:.0f} s)", tallies, args.show_holdout)
    if args.set in (None, "deeppatent2"):
        started = time.perf_counter()
        pictures: list[Image.Image] | None = [] if args.picture else None
        tallies = run_deeppatent2(args.patents, args.as_stored, pictures)
        if pictures:
            write_picture(args.picture, pictures)
        frame = "as stored, landscape sheets not turned" if args.as_stored else "upright"
        report(f"deeppatent2: 15 real 2020 multi-FIG. sheets, {frame} ({time.perf_counter() - started:.0f} s)",
               tallies, args.show_holdout)


if __name__ == "__main__":
    main()
