"""Parse-stage throughput (patents/s) against raw `lxml.etree.fromstring` over the same documents, same run.

Goal: ratio >= 0.8 (the full field extraction costs at most a quarter of what lxml's parse itself costs).
Usage: python benchmarks/parse.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from designclip.pipeline.ingest.parse import _new_parser, parse_grant
from designclip.pipeline.ingest.views import _normalise_head
from lxml import etree

SAMPLE = Path(__file__).resolve().parents[1] / "designclip" / "sample" / "patents"


def _rate(fn, docs: list[bytes], repeat: int) -> float:
    """Best-of-3 documents per second over `repeat` passes; the view cache starts cold in every pass."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            _normalise_head.cache_clear()
            for d in docs:
                fn(d)
        best = min(best, time.perf_counter() - t0)
    return repeat * len(docs) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    docs = [p.read_bytes() for p in sorted(SAMPLE.glob("*/*.XML"))]
    parser = _new_parser()
    raw = _rate(lambda d: etree.fromstring(d, parser), docs, args.repeat)
    ours = _rate(parse_grant, docs, args.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"lxml {etree.__version__}")
    print(f"documents: {len(docs)} real design grants x {args.repeat} passes")
    print(f"raw lxml.etree.fromstring: {raw:9.1f} docs/s")
    print(f"designclip.pipeline.ingest.parse.parse_grant: {ours:9.1f} patents/s")
    print(f"ratio (parse stage / raw): {ours / raw:.2f}  (goal >= 0.80)")


if __name__ == "__main__":
    main()
