"""What vecbook adds to an HNSW query: `local` + `index="hnsw"` against raw usearch on the same graph.

    python bench/bench_ann_overhead.py [--n 100000] [--ef 32] [--quantization int8] [--queries 300] [--folder DIR]

Builds (or reopens, with ``--folder``) a local store of ``n`` clustered unit vectors
with ``index="hnsw"``, then times, query by query and taking turns: ``search`` on
the store's own usearch graph at the same ef for the same number of candidates
(the reference; a quantized graph is asked for ``rerank × 10``), vecbook's sync
``search_by_vector`` and its ``async_search_by_vector`` awaited on a user event loop.
Prints median, p99, the median of the per-query ratios and the load average. Also
times exact search at 10k (memory and local) against a bare numpy product; ``--tail``
adds what the p99 is made of (bare thread hops, GC off, a shorter GIL switch interval).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from common import K, interleaved, paired_ratio, rmtree  # noqa: E402
from sec_core import fill, reference  # noqa: E402
from vecbook import LocalVectorStore, MemoryVectorStore  # noqa: E402
from vecbook._aio import run_sync, to_thread  # noqa: E402


def report(title: str, timings: dict, baseline: str) -> None:
    print(f"\n{title}   (load {os.getloadavg()[0]:.2f})")
    for name, t in timings.items():
        s = np.asarray(t["samples"]) * 1e3
        ratio = "" if name == baseline else f"   {paired_ratio(timings, name, baseline)[0]:.2f}x {baseline}"
        print(f"  {name:28s} median {statistics.median(s):.3f} ms  p99 {np.percentile(s, 99):.3f} ms  max {s.max():.2f} ms{ratio}")


def timed_async(store, queries: np.ndarray):
    """Per-query async timings from one user event loop (as in a notebook cell's loop)."""
    loop = asyncio.new_event_loop()

    def one(i: int) -> None:
        loop.run_until_complete(store.async_search_by_vector(queries[i % len(queries)], "bench", top_k=K))

    return one, loop


def ann(args) -> None:
    folder = args.folder or tempfile.mkdtemp(prefix="vecbook-bench-annov-")
    spec = {"ef_search": args.ef, "quantization": args.quantization}
    vectors = data.vectors(args.n, 384)
    queries = data.queries(args.queries, 384)
    try:
        if not os.path.exists(os.path.join(folder, "bench")):
            writer = LocalVectorStore(store_dir=folder, index="hnsw", index_params=spec)
            t = time.perf_counter()
            fill(writer, vectors, data.metadata(args.n))
            writer.close()
            print(f"built {args.n:,} in {time.perf_counter() - t:.0f} s")
        store = LocalVectorStore(store_dir=folder, index="hnsw", index_params=spec)
        store.search_by_vector(queries[0], "bench", top_k=K)
        table = store._state("bench").table
        index = table.index
        print(f"waiting beside the graph: {len(table._unindexed):,} rows written, {len(table._gone):,} deleted (see docs/performance.md)")
        raw, wanted = index._raw, K * index.spec.candidates_per_result
        raw.expansion_search = max(args.ef, 2 * K, wanted)
        codes = index._codes(queries)  # what vecbook computes per query is timed on its side only
        one_async, loop = timed_async(store, queries)
        systems = {
            "raw usearch search": lambda i: raw.search(codes[i % len(queries)], wanted, threads=1),
            "vecbook local sync": lambda i: store.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
            "vecbook local async": one_async,
        }
        report(f"ANN {args.n:,} x 384, ef {args.ef}, top {K}", interleaved(systems, args.queries, rounds=args.rounds), "raw usearch search")
        if args.tail:
            tail(store, lambda q: raw.search(index._codes(q[None]), wanted, threads=1), queries)
        loop.close()
        store.close()
    finally:
        if not args.folder:
            rmtree(folder)


def tail(store, raw_search, queries: np.ndarray, count: int = 900) -> None:
    """Where the p99 comes from: the bare hops, and the search with GC off or a shorter GIL switch interval."""
    collections: list[int] = []
    gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)

    async def nothing() -> None:
        return None

    def run(label: str, fn) -> None:
        collections.clear()
        times = []
        for i in range(count):
            t = time.perf_counter()
            fn(queries[i % len(queries)])
            times.append(time.perf_counter() - t)
        d = np.asarray(times) * 1e3
        print(f"  {label:36s} median {np.median(d):.3f} ms  p99 {np.percentile(d, 99):.3f} ms  gc runs {len(collections)} (full {collections.count(2)})")

    print(f"\np99 sources   (load {os.getloadavg()[0]:.2f})")
    search = lambda q: store.search_by_vector(q, "bench", top_k=K)  # noqa: E731
    run("raw usearch search", raw_search)
    run("run_sync(bare coroutine)", lambda q: run_sync(nothing()))
    run("run_sync(to_thread(no-op))", lambda q: run_sync(to_thread(lambda: None)))
    run("sync search_by_vector", search)
    gc.disable()
    run("sync search_by_vector, gc off", search)
    gc.enable()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    run("sync search_by_vector, switch 0.5 ms", search)
    sys.setswitchinterval(interval)


def exact(args) -> None:
    n = 10_000
    vectors = data.vectors(n, 384)
    queries = data.queries(args.queries, 384)
    ref_one, _ = reference(vectors)
    folder = tempfile.mkdtemp(prefix="vecbook-bench-exact-")
    try:
        memory, local = MemoryVectorStore(), LocalVectorStore(store_dir=folder)
        for store in (memory, local):
            fill(store, vectors, data.metadata(n))
        m_async, m_loop = timed_async(memory, queries)
        l_async, l_loop = timed_async(local, queries)
        systems = {
            "numpy reference": lambda i: ref_one(queries[i % len(queries)]),
            "vecbook memory sync": lambda i: memory.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
            "vecbook memory async": m_async,
            "vecbook local sync": lambda i: local.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
            "vecbook local async": l_async,
        }
        report("exact 10k x 384, top 10", interleaved(systems, args.queries, rounds=args.rounds), "numpy reference")
        m_loop.close()
        l_loop.close()
        local.close()
    finally:
        rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--ef", type=int, default=32)
    parser.add_argument("--quantization", choices=["int8", "binary"], help="a quantized graph (default float32)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", help="keep the built store here and reuse it on later runs")
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--tail", action="store_true", help="also time what the p99 is made of (hops, GC, GIL switch interval)")
    args = parser.parse_args()
    ann(args)
    if not args.skip_exact:
        exact(args)


if __name__ == "__main__":
    main()
