"""Speed of the memory and local backends against the physical limit, printed as figures and ratios.

    python bench/bench_core.py [--n 100000] [--dims 384] [--queries 50]

Reference: a bare numpy matmul + argpartition over the same float32 matrix, in
the same process. Targets (issue 2): memory search ≤ 1.3× the reference; local
open of a 100k workspace < 1 s; one single-node insert into it < 10 ms; local
search as fast as memory once open.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time

import numpy as np

import vecbook
from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode
from vecbook.stores.batch import NodeBatch


def timeit(fn, repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def make_data(n: int, dims: int) -> NodeBatch:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dims), dtype=np.float32)
    ids = [f"id{i}" for i in range(n)]
    metadatas = [{"category": f"c{i % 10}", "rank": i, "month": f"20{10 + i % 16}-{1 + i % 12:02d}"} for i in range(n)]
    return NodeBatch(ids, [f"text {i}" for i in range(n)], metadatas, vectors)


def fill(store, batch: NodeBatch, chunk: int = 20_000) -> float:
    store.create_workspace("bench")
    t = time.perf_counter()
    for start in range(0, len(batch), chunk):
        part = batch.slice(start, start + chunk)
        store.insert([VectorNode.model_construct(unique_id=part.ids[i], workspace_id="bench", content=part.contents[i], metadata=part.metadatas[i], vector=part.vectors[i]) for i in range(len(part))], "bench")
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    n, dims, top_k = args.n, args.dims, 10
    print(f"vecbook {vecbook.__version__} | numpy {np.__version__} | {platform.processor() or platform.machine()} | python {platform.python_version()}")
    print(f"n={n} dims={dims} top_k={top_k}\n")
    data = make_data(n, dims)
    queries = np.random.default_rng(1).standard_normal((args.queries, dims), dtype=np.float32)
    matrix = np.ascontiguousarray(data.vectors)
    norms = np.linalg.norm(matrix, axis=1)

    qi = iter(range(10**9))

    def bare():
        q = queries[next(qi) % len(queries)]
        scores = (matrix @ q) / (norms * np.linalg.norm(q))
        top = np.argpartition(-scores, top_k)[:top_k]
        return top[np.argsort(-scores[top])]

    rows = []
    reference = timeit(bare, args.queries)
    rows.append(("numpy matmul+argpartition (reference)", reference * 1e3, "ms/query", 1.0))

    memory = MemoryVectorStore()
    insert_memory = fill(memory, data)
    rows.append(("memory: insert (pre-embedded)", n / insert_memory, "nodes/s", None))
    t_mem = timeit(lambda: memory.search_by_vector(queries[next(qi) % len(queries)], "bench", top_k=top_k), args.queries)
    rows.append(("memory: search", t_mem * 1e3, "ms/query", t_mem / reference))
    t_mem_f = timeit(lambda: memory.search_by_vector(queries[next(qi) % len(queries)], "bench", top_k=top_k, filter_dict={"category": "c3"}), args.queries)
    rows.append(("memory: search, filter 10%", t_mem_f * 1e3, "ms/query", t_mem_f / reference))
    t_mem_b = timeit(lambda: memory.batch_search(queries, "bench", top_k=top_k), 5) / len(queries)
    rows.append(("memory: batch_search (per query)", t_mem_b * 1e3, "ms/query", t_mem_b / reference))

    folder = tempfile.mkdtemp(prefix="vecbook-bench-")
    try:
        writer = LocalVectorStore(store_dir=folder)
        insert_local = fill(writer, data)
        rows.append(("local: insert (pre-embedded, 20k/call)", n / insert_local, "nodes/s", None))
        writer.close()
        t = time.perf_counter()
        local = LocalVectorStore(store_dir=folder)
        local.count("bench")
        t_open = time.perf_counter() - t
        rows.append((f"local: cold open of {n} nodes", t_open * 1e3, "ms", None))
        counter = iter(range(10**9))
        singles = []
        for _ in range(200):
            t = time.perf_counter()
            local.insert(VectorNode(unique_id=f"single{next(counter)}", content="x", vector=queries[0]), "bench")
            singles.append(time.perf_counter() - t)
        rows.append(("local: single-node insert, median of 200", statistics.median(singles) * 1e3, "ms", None))
        rows.append(("local: single-node insert, worst of 200", max(singles) * 1e3, "ms", None))
        t_loc = timeit(lambda: local.search_by_vector(queries[next(qi) % len(queries)], "bench", top_k=top_k), args.queries)
        rows.append(("local: search", t_loc * 1e3, "ms/query", t_loc / reference))
        rows.append(("local search / memory search", t_loc / t_mem, "x", None))
        t_loc_f = timeit(lambda: local.search_by_vector(queries[next(qi) % len(queries)], "bench", top_k=top_k, filter_dict={"category": "c3"}), args.queries)
        rows.append(("local: search, filter 10%", t_loc_f * 1e3, "ms/query", t_loc_f / reference))
        local.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  unit       vs reference")
    for name, value, unit, ratio in rows:
        print(f"{name:<{width}}  {value:>10.2f}  {unit:<9}  {'' if ratio is None else f'{ratio:.2f}x'}")


if __name__ == "__main__":
    main()
