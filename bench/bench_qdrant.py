"""QdrantVectorStore vs the raw qdrant-client, local mode, same data and operations.

    PYTHONPATH=src python bench/bench_qdrant.py [--n 10000] [--dims 384] [--queries 200]

Prints throughput for insert, unfiltered search and filtered search (top 10, with
payloads), and the ratio of vecbook's time to the raw client's (target <= 1.2x).
The raw side stores ``{"unique_id", "content", "metadata"}`` and asks for payloads
only; vecbook also stores what makes it exact (the original vector under cosine,
the ``_present`` list) and returns vectors with recomputed float64 scores.
Local mode on disk commits one sqlite transaction per point (fsync-bound for both
sides), so ``path=`` is measured on a smaller set.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from qdrant_client import QdrantClient, models

from vecbook import QdrantVectorStore, VectorNode
from vecbook.stores.qdrant import point_id

FILTER = {"category": "c3"}
RAW_FILTER = models.Filter(must=[models.FieldCondition(key="metadata.category", match=models.MatchValue(value="c3"))])
RANGE = {"rank": {"gte": 1000, "lt": 6000}}
RAW_RANGE = models.Filter(must=[models.FieldCondition(key="metadata.rank", range=models.Range(gte=1000, lt=6000))])


def dataset(n: int, dims: int):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dims)).astype(np.float32)
    metadatas = [{"category": f"c{i % 10}", "rank": int(rng.integers(0, 10_000))} for i in range(n)]
    ids = [f"doc-{i}" for i in range(n)]
    queries = rng.standard_normal((200, dims)).astype(np.float32)
    return ids, vectors, metadatas, queries


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Raw:
    """The same operations through qdrant-client alone."""

    def __init__(self, client: QdrantClient, ids, vectors, metadatas, batch: int = 1024):
        self.client, self.ids, self.vectors, self.metadatas, self.batch = client, ids, vectors, metadatas, batch

    def insert(self) -> None:
        if self.client.collection_exists("raw"):
            self.client.delete_collection("raw")
        self.client.create_collection("raw", vectors_config=models.VectorParams(size=self.vectors.shape[1], distance=models.Distance.COSINE))
        for s in range(0, len(self.ids), self.batch):
            stop = min(s + self.batch, len(self.ids))
            payloads = [{"unique_id": self.ids[i], "content": f"text {i}", "metadata": self.metadatas[i]} for i in range(s, stop)]
            points = models.Batch(ids=[point_id(i) for i in self.ids[s:stop]], vectors=self.vectors[s:stop], payloads=payloads)
            self.client.upsert("raw", points=points, wait=True)

    def search(self, queries, flt) -> None:
        raw_filter = {None: None, "term": RAW_FILTER, "range": RAW_RANGE}[flt]
        for q in queries:
            self.client.query_points("raw", query=q, query_filter=raw_filter, limit=10, with_payload=True)


class Ours:
    def __init__(self, store: QdrantVectorStore, ids, vectors, metadatas):
        self.store, self.dims = store, vectors.shape[1]
        self.nodes = [VectorNode(unique_id=ids[i], content=f"text {i}", metadata=metadatas[i], vector=vectors[i]) for i in range(len(ids))]

    def insert(self) -> None:
        self.store.delete_workspace("bench")
        self.store.create_workspace("bench", dimensions=self.dims)
        self.store.insert(self.nodes, "bench")

    def search(self, queries, flt) -> None:
        filter_dict = {None: None, "term": FILTER, "range": RANGE}[flt]
        for q in queries:
            self.store.search_by_vector(q, "bench", top_k=10, filter_dict=filter_dict)


def compare(title: str, raw: Raw, ours: Ours, queries, n_search: int, n_filtered: int, rounds: int) -> None:
    """Run each operation ``rounds`` times on each side, alternating, and keep the best time."""
    ops = {
        "insert": (len(ours.nodes), lambda side: side.insert()),
        "search": (n_search, lambda side: side.search(queries[:n_search], None)),
        "filtered (term)": (n_filtered, lambda side: side.search(queries[:n_filtered], "term")),
        "filtered (range)": (n_filtered, lambda side: side.search(queries[:n_filtered], "range")),
    }
    best = {op: [float("inf"), float("inf")] for op in ops}
    for _ in range(rounds):
        for op, (_, run) in ops.items():
            best[op][0] = min(best[op][0], timed(lambda: run(raw)))
            best[op][1] = min(best[op][1], timed(lambda: run(ours)))
    print(f"\n{title} (best of {rounds}; per second: points inserted, queries answered)")
    print(f"{'operation':<18}{'raw /s':>12}{'vecbook /s':>12}{'vecbook/raw':>13}")
    for op, (count, _) in ops.items():
        t_raw, t_ours = best[op]
        print(f"{op:<18}{count / t_raw:>12.1f}{count / t_ours:>12.1f}{t_ours / t_raw:>12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--filtered", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--disk-n", type=int, default=300, help="points for the path= (on disk) runs")
    args = parser.parse_args()

    ids, vectors, metadatas, queries = dataset(args.n, args.dims)
    queries = np.resize(queries, (max(args.queries, args.filtered), args.dims))
    raw = Raw(QdrantClient(location=":memory:"), ids, vectors, metadatas)
    ours = Ours(QdrantVectorStore(location=":memory:"), ids, vectors, metadatas)
    compare(f"local mode, :memory:, {args.n} x {args.dims}, top 10", raw, ours, queries, args.queries, args.filtered, args.rounds)

    m = args.disk_n
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        raw = Raw(QdrantClient(path=a), ids[:m], vectors[:m], metadatas[:m])
        ours = Ours(QdrantVectorStore(path=b), ids[:m], vectors[:m], metadatas[:m])
        compare(f"local mode, path= on disk, {m} x {args.dims}, top 10", raw, ours, queries, 50, 10, args.rounds)
        raw.client.close()
        ours.store.close()


if __name__ == "__main__":
    main()
