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
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} FAISS threads, faiss "
          f"{faiss.__version__}, Python {platform.python_version()}; {args.queries // 2} reported queries, "
          f"budget {args.budget_gb} GiB, target recall@10 {args.target}", flush=True)
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
