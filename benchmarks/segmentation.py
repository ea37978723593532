"""FIG. segmentation quality on the 30 real fixture patents against tests/data/segmentation_truth.json.

Reports the share of patents whose segmented region count equals their number of FIG.s (target >= 90%)
and the share of FIG.s assigned the right number on the right sheet and region (target >= 95%).
Usage: python benchmarks/segmentation.py [--patents USD0909824 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.render import RenderOptions, render_patent  # noqa: E402
from pipeline.segment_eval import SegmentationScore, score_patent  # noqa: E402
from tests.pipeline.test_render import fixture_input  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patents", nargs="*", help="patent id prefixes (default: every patent in the truth file)")
    args = parser.parse_args()
    truth = json.loads((ROOT / "tests/data/segmentation_truth.json").read_text())["patents"]
    score = SegmentationScore()
    started = time.perf_counter()
    for folder, entry in sorted(truth.items()):
        if args.patents and not any(folder.startswith(p) for p in args.patents):
            continue
        views = render_patent(fixture_input(folder.split("-")[0]), RenderOptions(size=64))
        score_patent(score, folder, entry, [s.meta for s in views.samples])
    print(f"patents with region count == number of FIG.s: {score.patents_count_right}/{score.patents} "
          f"= {100 * score.patent_share:.1f}% (target >= 90%)")
    print(f"FIG.s assigned the right number: {score.figs_right}/{score.figs} = {100 * score.fig_share:.1f}% "
          f"(target >= 95%)")
    print(f"({time.perf_counter() - started:.0f} s)")
    for line in score.wrong:
        print("  -", line)


if __name__ == "__main__":
    main()
