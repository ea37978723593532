"""Share of FIG.s whose view is `unknown`, over every FIG. of the fixture patents (goal <= 2 %), each one listed.

A FIG. counts once per `figures` row, i.e. `number-of-figures` rows per patent. Each unknown row is listed with why:
"not described" (the description names no such FIG.; the row exists because number-of-figures says so) or "no view
named" (the sentence names no direction or view type, and refers to no other FIG. whose view it could take).
Also printed: rows whose view was inherited, GUI image rows, flagged rows, and the view labels by count.
Usage: python benchmarks/views.py [--xml GRANT.XML|FOLDER ...]   (default: the 30 fixtures in designclip/sample)
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from designclip.pipeline.ingest.parse import parse_grant
from support import SAMPLE


def _xml_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.rglob("*.XML")) + sorted(p.rglob("*.xml"))
        elif p.is_file():
            files.append(p)
        else:
            raise SystemExit(f"{p}: no such file or folder; pass grant XML files or folders that hold them")
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xml", nargs="+", help="grant XML files or folders (default: the fixture patents)")
    args = ap.parse_args()
    files = _xml_files(args.xml) if args.xml else sorted(SAMPLE.glob("*/*.XML"))
    rows, unknown, reference, inherited, images, flagged = 0, [], [], [], [], []
    views: Counter[str] = Counter()
    mismatched = 0
    for path in files:
        grant = parse_grant(path.read_bytes())
        mismatched += bool(grant.figure_check and grant.figure_check.mismatch)
        for f in grant.figures:
            rows += 1
            views[f["view"]] += 1
            where = f"{grant.patent_id} FIG. {f['fig']}"
            if f["view"] == "unknown":
                why = "not described" if f["description"] is None else "no view named"
                unknown.append(f"{where}: {why}: {f['description'] or f['figure_flag']!s}")
            if f["view_type"] == "reference":
                reference.append(f"{where}: {f['description']}")
            if f["view_inherited_from"]:
                inherited.append(f"{where}: {f['view']} from FIG. {f['view_inherited_from']}: {f['description']}")
            if f["image_index"] is not None:
                images.append(f"{where}: image {f['image_index']}")
            if f["figure_flag"]:
                flagged.append(f"{where}: {f['figure_flag']}")
    share = len(unknown) / rows if rows else 0.0
    print(f"patents: {len(files)}, FIG. rows: {rows} (= sum of number-of-figures where given), "
          f"patents whose FIG. list disagrees with number-of-figures: {mismatched}")
    print(f"unknown views: {len(unknown)} of {rows} = {share:.1%}  (goal <= 2 %)")
    for title, items in (("unknown", unknown), ("Hague 'reference' (an auxiliary view, no direction)", reference),
                         ("inherited view", inherited), ("GUI image", images), ("flagged", flagged)):
        print(f"{title} rows: {len(items)}")
        for item in items:
            print(f"  {item}")
    print("views: " + ", ".join(f"{v} {n}" for v, n in views.most_common()))


if __name__ == "__main__":
    main()
