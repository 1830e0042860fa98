"""Pick the approximate-index library by measurement: hnswlib vs usearch vs faiss HNSW.

    python bench/bench_ann_libs.py [--n 100000] [--dims 384] [--kind clustered]

Same data, same graph degree (M=16), build with every core, then single-query
search on one thread at several search widths: build time, recall@10 against
exact, and query time. Prints one row per (library, ef); ``--json`` saves them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

K = 10


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    scores = queries @ matrix.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return top


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(map(int, f)) & set(map(int, t))) / len(t) for f, t in zip(found, truth)]))


def per_query(fn, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """Median seconds of one single-vector search, and the labels found."""
    fn(queries[:1])
    times, labels = [], []
    for q in queries:
        t = time.perf_counter()
        labels.append(fn(q[None, :]))
        times.append(time.perf_counter() - t)
    return statistics.median(times), np.vstack(labels)


def run_hnswlib(matrix, queries, efs, threads):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=matrix.shape[1])
    index.init_index(max_elements=len(matrix), ef_construction=128, M=16, allow_replace_deleted=True)
    t = time.perf_counter()
    index.add_items(matrix, np.arange(len(matrix)), num_threads=threads)
    build = time.perf_counter() - t
    for ef in efs:
        index.set_ef(max(ef, K))
        yield build, ef, *per_query(lambda q: index.knn_query(q, K, num_threads=1)[0], queries)


def run_usearch(matrix, queries, efs, threads, dtype="f32"):
    from usearch.index import Index

    index = Index(ndim=matrix.shape[1], metric="cos", dtype=dtype, connectivity=16, expansion_add=128)
    t = time.perf_counter()
    index.add(np.arange(len(matrix)), matrix, threads=threads)
    build = time.perf_counter() - t
    for ef in efs:
        index.expansion_search = max(ef, K)
        yield build, ef, *per_query(lambda q: index.search(q, K, threads=1).keys.reshape(1, -1), queries)


def run_faiss(matrix, queries, efs, threads):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(matrix.shape[1], 16, faiss.METRIC_INNER_PRODUCT)  # unit vectors: IP = cosine
    index.hnsw.efConstruction = 128
    t = time.perf_counter()
    index.add(matrix)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    for ef in efs:
        index.hnsw.efSearch = max(ef, K)
        yield build, ef, *per_query(lambda q: index.search(q, K)[1], queries)


LIBS = {
    "hnswlib": run_hnswlib,
    "usearch-f32": run_usearch,
    "usearch-f16": lambda *a: run_usearch(*a, dtype="f16"),
    "usearch-i8": lambda *a: run_usearch(*a, dtype="i8"),
    "faiss-hnsw": run_faiss,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--kind", default="clustered", choices=data.KINDS)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--efs", default="32,64,128")
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json")
    args = parser.parse_args()
    matrix = data.vectors(args.n, args.dims, args.kind)
    queries = data.queries(args.queries, args.dims, args.kind)
    truth = exact_top(matrix, queries)
    exact_time, _ = per_query(lambda q: exact_top(matrix, q), queries[:50])
    print(f"n={args.n} dims={args.dims} kind={args.kind} exact {exact_time * 1e3:.2f} ms/query; load {os.getloadavg()[0]:.1f}")
    print(f"{'library':<12} {'build s':>8} {'ef':>4} {'recall@10':>9} {'ms/query':>9} {'x exact':>8}")
    rows = []
    for name in args.libs.split(","):
        for build, ef, seconds, labels in LIBS[name](matrix, queries, [int(e) for e in args.efs.split(",")], args.threads):
            r = recall(labels, truth)
            rows.append({"library": name, "n": args.n, "kind": args.kind, "build_s": build, "ef": ef, "recall": r, "query_ms": seconds * 1e3, "speedup": exact_time / seconds})
            print(f"{name:<12} {build:>8.1f} {ef:>4} {r:>9.3f} {seconds * 1e3:>9.3f} {exact_time / seconds:>8.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"exact_ms": exact_time * 1e3, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
