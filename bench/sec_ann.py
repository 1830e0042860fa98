"""The approximate index (index="hnsw"): build rate, recall@10 against exact, speed against exact.

Recall is measured against the exact top 10 (numpy, same vectors); speed against
the numpy reference, query by query, interleaved. Clustered vectors are the
realistic case the targets refer to; i.i.d. Gaussian vectors are the worst case.
"""

from __future__ import annotations

import statistics
import tempfile

import numpy as np

from common import K, Record, Results, dir_bytes, exact_truth, interleaved, paired_ratio, recall_at_k, rmtree, spread_ms
from sec_core import RAW, cold_open, fill, reference
from vecbook import LocalVectorStore, MemoryVectorStore

import data


def rows_of(hits) -> list[int]:
    return [int(h.unique_id[2:]) for h in hits]


def measure(store, name: str, n: int, kind: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, results: Results, count: int) -> None:
    section = f"ann-{kind}"
    found = [rows_of(hits) for hits in store.batch_search(queries, "bench", top_k=K)]
    r = recall_at_k(found, truth)
    targeted = kind == "clustered" and n >= 1_000_000  # the targets are set at 1M
    results.add(Record(section, name, "recall@10 vs exact", n, r, "", target=">=0.95" if targeted else None, ok=r >= 0.95 if targeted else None))
    ref_one, _ = reference(vectors)
    timings = interleaved(
        {
            "numpy reference": lambda i: ref_one(queries[i % len(queries)]),
            name: lambda i: store.search_by_vector(queries[i % len(queries)], "bench", top_k=K),
        },
        count,
    )
    ratio, (lo, hi) = paired_ratio(timings, "numpy reference", name)
    results.add(
        Record(
            section, name, "search, top 10", n, timings[name]["median"] * 1e3, "ms/query", spread=spread_ms(timings[name]),
            ratio=ratio, baseline="faster than exact", target=">=20x" if targeted else None,
            ok=ratio >= 20 if targeted else None, extra={"exact_ms": timings["numpy reference"]["median"] * 1e3, "ratio_round_range": (lo, hi)},
        )
    )


def run(n: int, vectors: np.ndarray, queries: np.ndarray, kind: str, results: Results, count: int, local: bool) -> None:
    section = f"ann-{kind}"
    truth = exact_truth(vectors, queries)
    metas = data.metadata(n)
    if not local:
        store = MemoryVectorStore(index="hnsw")
        seconds = fill(store, vectors, metas)
        results.add(Record(section, "vecbook memory+hnsw", "insert incl. index build", n, n / seconds, "nodes/s", note=f"{seconds:.0f} s"))
        measure(store, "vecbook memory+hnsw", n, kind, vectors, queries, truth, results, count)
        table = store._state("bench").table
        results.add(Record(section, "vecbook memory+hnsw", "index RAM per node (est.)", n, table.index.nbytes / n, "B", ratio=table.index.nbytes / n / RAW, baseline="raw f32"))
        return
    folder = tempfile.mkdtemp(prefix="vecbook-bench-ann-")
    try:
        writer = LocalVectorStore(store_dir=folder, index="hnsw")
        seconds = fill(writer, vectors, metas)
        writer.close()
        results.add(Record(section, "vecbook local+hnsw", "insert incl. index build", n, n / seconds, "nodes/s", note=f"{seconds:.0f} s"))
        disk = dir_bytes(folder)
        results.add(Record(section, "vecbook local+hnsw", "bytes on disk per node", n, disk / n, "B", ratio=disk / n / RAW, baseline="raw f32"))
        opens = cold_open(folder, index="hnsw", repeat=2)
        open_s = [o["seconds"] for o in opens]
        results.add(Record(section, "vecbook local+hnsw", "cold open, index loaded", n, statistics.median(open_s) * 1e3, "ms", spread=(min(open_s) * 1e3, max(open_s) * 1e3)))
        rss = statistics.median(o["rss_delta"] for o in opens) / n
        results.add(Record(section, "vecbook local+hnsw", "RAM per node (RSS after open)", n, rss, "B", ratio=rss / RAW, baseline="raw f32"))
        store = LocalVectorStore(store_dir=folder, index="hnsw")
        measure(store, "vecbook local+hnsw", n, kind, vectors, queries, truth, results, count)
        store.close()
    finally:
        rmtree(folder)
