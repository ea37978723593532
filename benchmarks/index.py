"""Index benchmark: recall@10 and QPS of the planned FAISS index vs exact IndexFlatIP search, same vectors, same run.

Data (L2-normalised float32, inner product): `random` = uniform on the sphere (no structure: the worst case for
any approximate index) and `clustered` = embedding-like (a few thousand Gaussian clusters in a 64-d subspace, a
shared mean direction, isotropic noise; see pipeline/index/synthetic.py). Queries come from the same distribution and
are not database rows; half tune the search parameter (pipeline.index.faiss_index.tune_index: fastest setting reaching
the target recall), the other half are reported. Latency = one batch search of all reported queries / count, best
of 3, exact and index runs alternated (exact search: IndexFlatIP's BLAS kernel via faiss.knn on the same
array). Both use the same OpenMP threads.
Goal: recall@10 >= 0.95 at >= 10x the exact QPS from 1M vectors.

Quick (a few minutes):   python benchmarks/index.py
Full (2 cores: ~1 h):    python benchmarks/index.py --sizes 100000 1000000 --kinds clustered random
Compare index kinds:     python benchmarks/index.py --force hnsw ivfpq
Append vs rebuild:       python benchmarks/index.py --append --sizes 100000 [--years 2]   (through the driver)

--append writes releases of clustered vectors to a temporary data root (float16 shards, as `embed --fp16` stores
them): y1..yY (n each, other draws of the same clusters) and `all-years` (the same Y*n rows in one release). After
appending y1..y(Y-1) it times `designclip index --append`'s driver adding yY (load, add, read every release's
vectors back, re-tune, measure recall over all of them, write a new generation) against the same driver building
one index over `all-years` from scratch (the rebuild an append saves), and reports recall@10 of each.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import faiss
import numpy as np
from designclip.pipeline.index.faiss_index import build_index, evaluate_index, tune_index
from designclip.pipeline.index.plan import DEFAULT_FLAT_MAX, HNSW_MAX, plan_index
from designclip.pipeline.index.synthetic import clustered_vectors, uniform_vectors


def make_data(kind: str, n: int, dim: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "random":
        return uniform_vectors(n, dim, seed), uniform_vectors(queries, dim, seed + 1)
    return clustered_vectors(n, dim, seed=seed, n_queries=queries)


def plan_for(force: str, n: int, dim: int, budget: int):
    """The plan the pipeline would choose (`plan`), or one index kind forced (for comparison)."""
    if force == "hnsw":
        return plan_index(n, dim, budget, flat_max=0, hnsw_max=10**12)
    if force == "ivfpq":
        return plan_index(n, dim, budget, flat_max=0, hnsw_max=0)
    return plan_index(n, dim, budget, DEFAULT_FLAT_MAX, HNSW_MAX)


def interleaved_times(index: faiss.Index, xb: np.ndarray, xq: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best batch time of exact search (IndexFlatIP's kernel, faiss.knn on the same array: no 2 GB copy) and of
    the index, alternated so load from other processes on a shared machine hits both alike."""
    exact = approx = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        faiss.knn(xq, xb, 10, metric=faiss.METRIC_INNER_PRODUCT)
        exact = min(exact, time.perf_counter() - started)
        started = time.perf_counter()
        index.search(xq, 10)
        approx = min(approx, time.perf_counter() - started)
    return exact, approx


def run(kind: str, n: int, args: argparse.Namespace, force: str) -> dict:
    started = time.perf_counter()
    xb, xq = make_data(kind, n, args.dim, args.queries, args.seed)
    gen_s = time.perf_counter() - started
    plan = plan_for(force, n, args.dim, int(args.budget_gb * 2**30))
    ids = np.arange(n, dtype=np.int64)
    started = time.perf_counter()
    index = build_index(xb, ids, plan)
    build_s = time.perf_counter() - started
    half = len(xq) // 2
    started = time.perf_counter()
    tuned = tune_index(index, plan, xb, xq[:half], 10, args.target, args.latency_ms)
    tune_s = time.perf_counter() - started
    reported = xq[half:]
    recall = evaluate_index(index, xb, reported, 10, repeats=1)["recall_at_10"]
    exact_s, approx_s = interleaved_times(index, xb, reported, args.repeats)
    ms, exact_ms = 1000 * approx_s / len(reported), 1000 * exact_s / len(reported)
    ratio = exact_ms / ms
    row = {"data": kind, "n": n, "factory": plan.factory, "gen_s": gen_s, "build_s": build_s, "tune_s": tune_s,
           "setting": ", ".join(f"{k}={v}" for k, v in tuned.settings.items()) or "-",
           "recall": recall, "ms": ms, "exact_ms": exact_ms, "qps": 1000 / ms, "exact_qps": 1000 / exact_ms,
           "ratio": ratio, "goal": recall >= 0.95 and ratio >= 10, "sweep": tuned.sweep}
    del index, xb
    return row


def write_release(root: str, release: str, parts: list[tuple[np.ndarray, np.ndarray, list[str]]], dim: int,
                  shard_rows: int = 10_000) -> None:
    """A release (sizes.json + marker) embedded by tag `syn`: the given (image, text, keys) rows, all in train."""
    import pyarrow as pa
    from designclip.storage import layout
    from designclip.storage.embeddings import (
        EMBED_META,
        release_fingerprint,
        write_encoder_record,
        write_shard_embeddings,
    )
    from designclip.storage.folder import DataFolder

    image = np.concatenate([p[0] for p in parts])
    text = np.concatenate([p[1] for p in parts])
    keys = [k for p in parts for k in p[2]]
    folder = DataFolder(root)
    folder.write_json(layout.release_marker(release), {"fingerprint": {"release": release}})
    numbers = range(0, len(keys), shard_rows)
    folder.write_json(layout.release_file(release, layout.release_sizes_name("train")),
                      {f"{i:05d}.tar": min(shard_rows, len(keys) - start) for i, start in enumerate(numbers)})
    write_encoder_record(folder, release, "syn", {"tag": "syn", "dim": dim, "has_text": True,
                                                  "weights_sha256": "b" * 64, "spec": {"model": "syn"}})
    fingerprint = release_fingerprint(folder, release)
    for number, start in enumerate(numbers):
        stop = min(len(keys), start + shard_rows)
        rows = [{"row": i, "key": keys[start + i], "patent_id": keys[start + i][:-2], "split": "train",
                 "shard": f"train/{number:05d}.tar", "shard_index": i, "image_ok": True, "text_ok": True}
                for i in range(stop - start)]
        meta = pa.Table.from_pylist(rows, schema=EMBED_META)
        write_shard_embeddings(folder, release, "syn", "train", number, image[start:stop], text[start:stop], meta,
                               {"release_fingerprint": fingerprint}, dtype="float16")


def run_append(n: int, args: argparse.Namespace) -> dict:
    """Grow the index of years 1..Y-1 by year Y (the append) against one build over all Y years (the rebuild),
    through the same driver; every year is n other draws of the same clusters (one model)."""
    import tempfile

    from designclip.pipeline.index.append import append_release
    from designclip.pipeline.index.driver import IndexOptions

    total = args.years * n
    image, _ = clustered_vectors(total, args.dim, seed=args.seed)
    text = image + np.random.default_rng(args.seed + 1).standard_normal(image.shape, dtype=np.float32) * 0.05
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    keys = [f"USD{i:08d}-1" for i in range(total)]
    years = [(image[s:s + n], text[s:s + n], keys[s:s + n]) for s in range(0, total, n)]
    options = IndexOptions(splits=("train",), memory_budget_gb=args.budget_gb, target_recall=args.target,
                           latency_ms=args.latency_ms, max_queries=args.queries)
    with tempfile.TemporaryDirectory(prefix="designclip-append-") as root:
        for y, part in enumerate(years, 1):
            write_release(root, f"y{y}", [part], args.dim)
        write_release(root, "all-years", years, args.dim)
        del image, text, years
        for y in range(1, args.years):
            earlier = append_release(root, f"y{y}", "syn", options=options)
        started = time.perf_counter()
        grown = append_release(root, f"y{args.years}", "syn", options=options)
        append_s = time.perf_counter() - started
        started = time.perf_counter()
        rebuilt = append_release(root, "all-years", "syn", name="rebuilt", options=options)
        rebuild_s = time.perf_counter() - started
    return {"n": n, "years": args.years, "factory": grown["factory"], "before": earlier["n"],
            "add_s": grown["releases"][-1]["add_seconds"], "append_s": append_s,
            "append_recall": grown["recall_at_10"], "append_setting": grown["tuned_settings"],
            "build_s": rebuilt["build_seconds"], "rebuild_s": rebuild_s, "rebuild_recall": rebuilt["recall_at_10"],
            "rebuild_setting": rebuilt["tuned_settings"], "rebuild_factory": rebuilt["factory"],
            "queries": grown["queries"], "advice": grown["rebuild_advice"]}


def print_append(rows: list[dict]) -> None:
    print("\n| years x n | index | add s | append s (end to end) | recall@10 grown | build s | "
          "rebuild s (end to end) | recall@10 rebuilt | rebuild / append |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['years']} x {r['n']:,} | `{r['factory']}` | {r['add_s']:.1f} | {r['append_s']:.1f} | "
              f"{r['append_recall']:.3f} ({r['append_setting']}) | {r['build_s']:.1f} | {r['rebuild_s']:.1f} | "
              f"{r['rebuild_recall']:.3f} ({r['rebuild_setting']}) | {r['rebuild_s'] / r['append_s']:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--kinds", nargs="+", default=["clustered", "random"], choices=["clustered", "random"])
    parser.add_argument("--queries", type=int, default=2000, help="half tune, half are reported")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--budget-gb", type=float, default=8.0, help="GiB")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--force", nargs="+", default=["plan"], choices=["plan", "hnsw", "ivfpq"],
                        help="plan = the index the pipeline chooses; hnsw / ivfpq force that kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of exact and index search, alternated")
    parser.add_argument("--sweep", action="store_true", help="also print every tuning setting tried")
    parser.add_argument("--append", action="store_true",
                        help="append year Y (n vectors) to the index of years 1..Y-1 vs one build over all Y years")
    parser.add_argument("--years", type=int, default=2, help="--append: releases of n vectors each (default 2)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} FAISS threads, faiss "
          f"{faiss.__version__}, Python {platform.python_version()}; {args.queries // 2} reported queries, "
          f"budget {args.budget_gb} GiB, target recall@10 {args.target}", flush=True)
    if args.append:
        rows = []
        for n in args.sizes:
            rows.append(run_append(n, args))
            r = rows[-1]
            print(f"years={args.years} n={n}: append {n} to {r['before']}: {r['append_s']:.1f}s (add "
                  f"{r['add_s']:.1f}s), recall@10 {r['append_recall']:.3f}; rebuild {r['before'] + n}: "
                  f"{r['rebuild_s']:.1f}s (build {r['build_s']:.1f}s), recall@10 {r['rebuild_recall']:.3f}; "
                  f"ratio {r['rebuild_s'] / r['append_s']:.2f} end to end, "
                  f"{r['build_s'] / max(r['add_s'], 1e-9):.2f} build/add ({r['queries']} queries; "
                  f"advice: {r['advice']})", flush=True)
        print_append(rows)
        return
    header = (f"{'data':9s} {'n':>8s} {'index':28s} {'build s':>8s} {'setting':>22s} {'recall@10':>9s} "
              f"{'ms/q':>7s} {'QPS':>8s} {'exact QPS':>9s} {'QPS ratio':>9s} goal")
    rows = []
    for n in args.sizes:
        for kind in args.kinds:
            for force in args.force:
                row = run(kind, n, args, force)
                rows.append(row)
                if len(rows) == 1:
                    print(header, flush=True)
                print(f"{row['data']:9s} {row['n']:8d} {row['factory']:28s} {row['build_s']:8.1f} "
                      f"{row['setting']:>22s} {row['recall']:9.3f} {row['ms']:7.3f} {row['qps']:8.0f} "
                      f"{row['exact_qps']:9.0f} {row['ratio']:8.1f}x {'yes' if row['goal'] else 'no'}", flush=True)
                if args.sweep:
                    for s in row["sweep"]:
                        print("    ", s, flush=True)
    print("\n| data | n | index | build s | setting | recall@10 | ms/query | QPS | exact QPS | QPS vs exact | goal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['n']:,} | `{r['factory']}` | {r['build_s']:.1f} | {r['setting']} "
              f"| {r['recall']:.3f} | {r['ms']:.3f} | {r['qps']:.0f} | {r['exact_qps']:.0f} | {r['ratio']:.1f}x | "
              f"{'met' if r['goal'] else 'not met'} |")


if __name__ == "__main__":
    main()
