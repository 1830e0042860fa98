"""Pick the approximate-index library by measurement: hnswlib vs usearch (f32, int8, binary) vs faiss HNSW.

    python bench/bench_ann_libs.py [--n 100000] [--dims 384] [--kind clustered|minilm] [--libs hnswlib,usearch-f32,usearch-i8,usearch-b1]

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


def minilm(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Real embeddings: the summaries of the ~14.7k PyPI packages in ../shared/data (or the bundled
    3,000), embedded once by the offline MiniLM model and cached; ``count`` of them held out as queries."""
    import csv

    cache = os.path.expanduser("~/.cache/vecbook-bench/pypi_minilm.npy")
    if not os.path.exists(cache):
        from vecbook.embedding.minilm import LocalEmbeddingModel

        source = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "pypi-top-packages.tsv")
        if not os.path.exists(source):
            source = os.path.join(os.path.dirname(__file__), "..", "src", "vecbook", "datasets", "pypi_top_3000.tsv")
        with open(source, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"))
        vectors = np.asarray(LocalEmbeddingModel().get_embeddings([r["summary"] or r["name"] for r in rows]), dtype=np.float32)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.save(cache, vectors)
    vectors = np.load(cache)
    order = np.random.default_rng(0).permutation(len(vectors))
    return np.ascontiguousarray(vectors[order[count:]]), np.ascontiguousarray(vectors[order[:count]])


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
    """usearch as vecbook runs it: int8 codes of the unit vectors or sign bits, candidates re-ranked exactly."""
    from usearch.index import Index

    over = {"f32": 1, "f16": 1, "i8": 3, "b1": 20}[dtype]  # vecbook's default rerank per quantization
    if dtype == "b1":
        encode, metric = (lambda v: np.packbits(v > 0, axis=-1)), "hamming"
    elif dtype == "i8":
        encode, metric = (lambda v: np.rint(v / np.linalg.norm(v, axis=-1, keepdims=True) * 127).astype(np.int8)), "cos"
    else:
        encode, metric = (lambda v: v), "cos"
    index = Index(ndim=matrix.shape[1], metric=metric, dtype=dtype, connectivity=16, expansion_add=128)
    t = time.perf_counter()
    index.add(np.arange(len(matrix)), encode(matrix), threads=threads)
    build = time.perf_counter() - t
    path = f"/tmp/bench_ann_libs_{os.getpid()}.usearch"
    index.save(path)
    t = time.perf_counter()
    view = Index.restore(path, view=True)
    print(f"  usearch-{dtype}: file {os.path.getsize(path) / len(matrix):.0f} B/vector, opened as a map in {(time.perf_counter() - t) * 1e3:.1f} ms", flush=True)
    os.unlink(path)

    def search(q):
        keys = view.search(encode(q), K * over, threads=1).keys
        if over == 1:
            return keys.reshape(1, -1)
        best = np.argsort(-(matrix[keys] @ q[0]))[:K]
        return keys[best].reshape(1, -1)

    for ef in efs:
        view.expansion_search = max(ef, K * over)
        yield build, ef, *per_query(search, queries)


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
    "usearch-b1": lambda *a: run_usearch(*a, dtype="b1"),
    "faiss-hnsw": run_faiss,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--kind", default="clustered", choices=[*data.KINDS, "minilm"], help="minilm: real embeddings, see minilm()")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--efs", default="32,64,128")
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.kind == "minilm":
        matrix, queries = minilm(args.queries)
        args.n, args.dims = len(matrix), matrix.shape[1]
    else:
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
