"""vecbook's own figures: exact search against the numpy limit, filters, inserts, cold open, bytes.

Reference (the physical limit): a bare numpy matmul + argpartition over the same
float32 matrix in the same process, cosine by precomputed norms, top 10 sorted.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

import data
from common import K, PYTHON, BENCH_DIR, Record, Results, child_env, dir_bytes, interleaved, paired_ratio, rmtree, run_json, spread_ms, written_bytes
from vecbook import LocalVectorStore, MemoryVectorStore, NodeColumns, VectorNode

RAW = 384 * 4  # bytes of one float32 vector of 384 dimensions


def reference(matrix: np.ndarray):
    norms = np.linalg.norm(matrix, axis=1)

    def search(q: np.ndarray) -> np.ndarray:
        scores = (q[None, :] @ matrix.T)[0]
        scores /= norms * np.linalg.norm(q)
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    def batch(queries: np.ndarray) -> list[np.ndarray]:
        scores = queries @ matrix.T
        scores /= norms[None, :] * np.linalg.norm(queries, axis=1)[:, None]
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        return [t[np.argsort(-s[t])] for t, s in zip(top, scores)]

    return search, batch


def node_chunks(vectors: np.ndarray, metas: list[dict], chunk: int):
    for start in range(0, len(vectors), chunk):
        stop = min(len(vectors), start + chunk)
        yield [
            VectorNode.model_construct(unique_id=f"id{i}", workspace_id="bench", content=f"text {i}", metadata=metas[i], vector=vectors[i])
            for i in range(start, stop)
        ]


def fill(store, vectors: np.ndarray, metas: list[dict], chunk: int = 10_000) -> float:
    """Insert every node, ``chunk`` per call; seconds taken (node construction included)."""
    store.create_workspace("bench")
    t = time.perf_counter()
    for nodes in node_chunks(vectors, metas, chunk):
        store.insert(nodes, "bench")
    return time.perf_counter() - t


def fill_columns(store, vectors: np.ndarray, metas: list[dict], chunk: int) -> float:
    """Insert every node as NodeColumns (a bulk load without a VectorNode per row), ``chunk`` per call; seconds
    taken (the columns' lists built in the loop, as a user's loop would)."""
    store.create_workspace("bench")
    t = time.perf_counter()
    for start in range(0, len(vectors), chunk):
        stop = min(len(vectors), start + chunk)
        ids, contents = [f"id{i}" for i in range(start, stop)], [f"text {i}" for i in range(start, stop)]
        store.insert(NodeColumns(ids=ids, contents=contents, metadatas=metas[start:stop], vectors=vectors[start:stop]), "bench")
    return time.perf_counter() - t


def cold_open(folder: str, index: str | None = None, repeat: int = 3) -> list[dict]:
    """Open the store in a fresh process: seconds to the first answer, and the RSS it added."""
    argv = [PYTHON, str(BENCH_DIR / "open_local.py"), folder, "bench"] + (["--index", index] if index else [])
    return [run_json(argv, timeout=1800, env=child_env()) for _ in range(repeat)]


def run(n: int, vectors: np.ndarray, queries: np.ndarray, results: Results, count: int, quick: bool) -> None:
    metas = data.metadata(n)
    section = "core"
    ref_one, ref_batch = reference(vectors)

    folder = tempfile.mkdtemp(prefix="vecbook-bench-local-")
    try:
        writer = LocalVectorStore(store_dir=folder)
        cpu, written = time.process_time(), written_bytes()
        t_loc = fill(writer, vectors, metas, chunk=1000)
        t = time.perf_counter()
        writer.close()  # publishes a snapshot of what the bulk load left in the log
        close_s = time.perf_counter() - t
        cpu = time.process_time() - cpu  # every thread of this process: steadier than nodes/s on a loaded machine
        results.add(Record(section, "vecbook local", "insert, pre-embedded (1k/call)", n, n / t_loc, "nodes/s", note="fsync per call"))
        results.add(Record(section, "vecbook local", "insert + close, CPU per node (nodes built in the loop)", n, cpu / n * 1e6, "us"))
        results.add(Record(section, "vecbook local", "close after the bulk load (compaction)", n, close_s * 1e3, "ms"))
        written = (written_bytes() - written) / n  # the log, the scratch, the snapshots
        results.add(Record(section, "vecbook local", "bytes written per node (bulk load)", n, written, "B", ratio=written / RAW, baseline="raw f32"))
        disk = dir_bytes(folder)
        results.add(Record(section, "vecbook local", "bytes on disk per node", n, disk / n, "B", ratio=disk / n / RAW, baseline="raw f32"))
        columns_folder = tempfile.mkdtemp(prefix="vecbook-bench-columns-")
        try:
            loader = LocalVectorStore(store_dir=columns_folder)
            t_cols = fill_columns(loader, vectors, metas, chunk=1000)
            loader.close()
        finally:
            rmtree(columns_folder)
        results.add(Record(section, "vecbook local", "insert, columns (1k/call)", n, n / t_cols, "nodes/s", note="NodeColumns, fsync per call"))
        opens = cold_open(folder)
        open_s = [o["seconds"] for o in opens]
        results.add(Record(section, "vecbook local", "cold open (new process)", n, statistics.median(open_s) * 1e3, "ms", spread=(min(open_s) * 1e3, max(open_s) * 1e3)))
        first = [o["seconds"] + o["first_search"] for o in opens]
        results.add(
            Record(
                section, "vecbook local", "cold open to first answer (new process)", n, statistics.median(first) * 1e3, "ms",
                spread=(min(first) * 1e3, max(first) * 1e3), target="<=500ms at 1M, <=50ms at 100k",
            )
        )
        rss = statistics.median(o["rss_delta"] for o in opens) / n
        results.add(Record(section, "vecbook local", "RAM per node (RSS after open)", n, rss, "B", ratio=rss / RAW, baseline="raw f32"))

        # Filled after the local bulk load, not before: a million rows held by another store in
        # this process made each of Python's full collections during that load cost ~2x as much
        # (6.1-6.6 s against 2.9-3.3 s of a 1M load), which no user loading one store pays.
        memory = MemoryVectorStore()
        t_mem = fill(memory, vectors, metas)
        results.add(Record(section, "vecbook memory", "insert, pre-embedded (10k/call)", n, n / t_mem, "nodes/s"))

        local = LocalVectorStore(store_dir=folder)
        local.count("bench")
        systems = {
            "numpy reference": lambda i: ref_one(queries[i % len(queries)]),
            "vecbook memory": lambda i: memory.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
            "vecbook local": lambda i: local.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
        }
        timings = interleaved(systems, count)
        for name, timing in timings.items():
            ratio = None if name == "numpy reference" else paired_ratio(timings, name, "numpy reference")
            results.add(
                Record(
                    section, name, "exact search, top 10", n, timing["median"] * 1e3, "ms/query",
                    ratio=ratio[0] if ratio else None, baseline="numpy" if ratio else None,
                    target="<=1.3x" if ratio else None, ok=ratio[0] <= 1.3 if ratio else None, spread=spread_ms(timing),
                    extra={"ratio_round_range": ratio[1]} if ratio else {},
                )
            )
        same = [r.unique_id for r in memory.search_by_vector(queries[0], "bench", top_k=K)] == [f"id{i}" for i in ref_one(queries[0])]
        if not same:
            print("  !! memory and the numpy reference disagree on query 0")

        batch_q = queries[: min(len(queries), 50)]
        batch_systems = {
            "numpy reference": lambda i: ref_batch(batch_q),
            "vecbook memory": lambda i: memory.batch_search(batch_q, "bench", top_k=K),
        }
        bt = interleaved(batch_systems, 3 if n >= 1_000_000 else 5)
        ratio = paired_ratio(bt, "vecbook memory", "numpy reference")
        results.add(Record(section, "numpy reference", f"batch of {len(batch_q)} queries, per query", n, bt["numpy reference"]["median"] / len(batch_q) * 1e3, "ms/query"))
        results.add(Record(section, "vecbook memory", f"batch_search of {len(batch_q)}, per query", n, bt["vecbook memory"]["median"] / len(batch_q) * 1e3, "ms/query", ratio=ratio[0], baseline="numpy"))

        filtered = {
            "memory": lambda i: memory.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
            "memory selective": lambda i: memory.search_by_vector(queries[i % len(queries)], "bench", top_k=K, filter_dict=data.SELECTIVE),
            "memory broad": lambda i: memory.search_by_vector(queries[i % len(queries)], "bench", top_k=K, filter_dict=data.broad(n)),
            "local": lambda i: local.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
            "local selective": lambda i: local.search_by_vector(queries[i % len(queries)], "bench", top_k=K, filter_dict=data.SELECTIVE),
            "local broad": lambda i: local.search_by_vector(queries[i % len(queries)], "bench", top_k=K, filter_dict=data.broad(n)),
        }
        ft = interleaved(filtered, count)
        for backend in ("memory", "local"):
            for kind, share in (("selective", "1%"), ("broad", "90%")):
                name = f"{backend} {kind}"
                ratio = paired_ratio(ft, name, backend)
                results.add(
                    Record(
                        section, f"vecbook {backend}", f"filtered search, {kind} ({share})", n, ft[name]["median"] * 1e3, "ms/query",
                        ratio=ratio[0], baseline="unfiltered", target="<=2x", ok=ratio[0] <= 2.0, spread=spread_ms(ft[name]),
                    )
                )

        singles = []
        for j in range(100 if not quick else 50):
            t = time.perf_counter()
            local.insert(VectorNode(unique_id=f"single{j}", content="x", vector=queries[j % len(queries)]), "bench")
            singles.append(time.perf_counter() - t)
        results.add(Record(section, "vecbook local", "single-node insert (fsync)", n, statistics.median(singles) * 1e3, "ms", spread=(min(singles) * 1e3, max(singles) * 1e3)))
        after = []
        for j in range(10):  # a write, then a filtered search: the filter columns catch up with one row
            memory.insert(VectorNode(unique_id=f"after{j}", content="x", metadata={"bucket": 7}, vector=queries[j]), "bench")
            t = time.perf_counter()
            memory.search_by_vector(queries[j + 1], "bench", top_k=K, filter_dict=data.SELECTIVE)
            after.append(time.perf_counter() - t)
        results.add(Record(section, "vecbook memory", "selective filter right after a write", n, statistics.median(after) * 1e3, "ms", spread=(min(after) * 1e3, max(after) * 1e3)))
        local.close()
    finally:
        rmtree(folder)
