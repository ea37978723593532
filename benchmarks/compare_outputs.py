"""Are two data roots the same output? For refactors that must not change a byte: run `designclip demo` twice on
the old code (which files are deterministic at all) and once on the new, then compare.

    designclip --data-root /tmp/old1 demo; designclip --data-root /tmp/old2 demo   # old commit
    designclip --data-root /tmp/new demo                                           # new commit
    python benchmarks/compare_outputs.py /tmp/old1 /tmp/old2 /tmp/new

Every file identical in both old runs must be identical in the new one (shards, release tars, embeddings, FAISS
indexes, ...); Parquet files that differ run to run are compared without their time columns; index cards on their
factory and recall@10; release SHA256SUMS on the tar lines. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq

TIME_COLUMN = re.compile(r"(_at$|_s$|time|seconds)")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _rows_without_time(path: Path) -> list[dict]:
    table = pq.read_table(path)
    return table.select([c for c in table.column_names if not TIME_COLUMN.search(c)]).to_pylist()


def _card_key(path: Path) -> tuple:
    card = json.loads(path.read_text())
    return card.get("factory"), json.dumps(card.get("recall_at_10"), sort_keys=True)


def _tar_sums(root: Path) -> list[str]:
    return sorted(line for p in root.glob("releases/*/SHA256SUMS") for line in p.read_text().splitlines()
                  if ".tar" in line)


def compare(old1: Path, old2: Path, new: Path) -> tuple[int, list[str]]:
    """(files checked byte for byte, problems) of `new` against two runs of the old code."""
    files1, files2, files_new = _files(old1), _files(old2), _files(new)
    problems = []
    if files_new != files1:
        problems.append(f"file sets differ: missing {sorted(files1 - files_new)[:10]}, "
                        f"extra {sorted(files_new - files1)[:10]}")
    stable = sorted(r for r in files1 & files2 if _sha(old1 / r) == _sha(old2 / r) and not r.endswith(".md"))
    problems += [f"differs: {r}" for r in stable if r in files_new and _sha(new / r) != _sha(old1 / r)]
    for rel in sorted((files1 & files_new) - set(stable)):
        if rel.endswith(".parquet") and _rows_without_time(old1 / rel) != _rows_without_time(new / rel):
            problems.append(f"parquet differs beyond its time columns: {rel}")
        if rel.endswith("card.json") and _card_key(old1 / rel) != _card_key(new / rel):
            problems.append(f"index card factory or recall@10 differs: {rel}")
    if _tar_sums(old1) != _tar_sums(new):
        problems.append("release SHA256SUMS differ on the tar lines")
    return len(stable), problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old1", type=Path, help="data root of the old code's first run")
    parser.add_argument("old2", type=Path, help="data root of the old code's second run (what is deterministic)")
    parser.add_argument("new", type=Path, help="data root of the new code's run")
    args = parser.parse_args()
    checked, problems = compare(args.old1, args.old2, args.new)
    print(f"{checked} files identical in both old runs compared byte for byte; {len(problems)} problems")
    for line in problems[:40]:
        print(f"  {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
