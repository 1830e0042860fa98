"""QdrantVectorStore vs the raw qdrant-client, local mode, same data and operations.

    PYTHONPATH=src python bench/bench_qdrant.py [--n 10000] [--dims 384] [--queries 100] [--rounds 3] [--disk-n 10000]

Prints throughput for insert (into an empty collection, made untimed), search one
query at a time (unfiltered, term filter, numeric range) and a batch of queries in
one call (top 10, with payloads), and the ratio of vecbook's time to the raw client's
(target <= 1.2x); inserts alternate sides round by round, queries query by query
(bench/common.py), for ``location=":memory:"`` and for ``path=``. The raw side stores
``{"unique_id", "content", "metadata"}`` and asks for payloads only; vecbook also
stores what makes it exact (the original vector under cosine, the ``_present`` list)
and returns vectors with recomputed float64 scores. Local mode on disk commits one
sqlite transaction per point (fsync-bound for both sides), so ``path=`` goes to
/dev/shm where there is one (``--real-disk`` for the disk, with a smaller ``--disk-n``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from qdrant_client import QdrantClient, models  # noqa: E402

import common  # noqa: E402
import data  # noqa: E402
from vecbook import QdrantVectorStore  # noqa: E402
from vecbook.stores.qdrant import point_id  # noqa: E402

BATCH = 1024


def raw_filter(spec: dict | None) -> models.Filter | None:
    """The portable filters of this benchmark in qdrant-client's own terms."""
    if spec is None:
        return None
    ((key, cond),) = spec.items()
    if isinstance(cond, dict):
        return models.Filter(must=[models.FieldCondition(key=f"metadata.{key}", range=models.Range(**cond))])
    return models.Filter(must=[models.FieldCondition(key=f"metadata.{key}", match=models.MatchValue(value=cond))])


class Raw:
    """The same operations through qdrant-client alone."""

    def __init__(self, client: QdrantClient, vectors: np.ndarray, metadatas: list[dict], filters: dict):
        self.client, self.vectors, self.metadatas = client, vectors, metadatas
        self.ids, self.contents = data.ids(len(vectors)), data.contents(len(vectors))
        self.filters = {name: raw_filter(spec) for name, spec in filters.items()}

    def reset(self) -> None:
        if self.client.collection_exists("raw"):
            self.client.delete_collection("raw")
        self.client.create_collection("raw", vectors_config=models.VectorParams(size=self.vectors.shape[1], distance=models.Distance.COSINE))

    def insert(self) -> None:
        for s in range(0, len(self.ids), BATCH):
            e = min(s + BATCH, len(self.ids))
            payloads = [{"unique_id": self.ids[i], "content": self.contents[i], "metadata": self.metadatas[i]} for i in range(s, e)]
            points = models.Batch(ids=[point_id(i) for i in self.ids[s:e]], vectors=self.vectors[s:e], payloads=payloads)
            self.client.upsert("raw", points=points, wait=True)

    def search(self, query: np.ndarray, name: str) -> None:
        self.client.query_points("raw", query=query, query_filter=self.filters[name], limit=common.K, with_payload=True)

    def batch(self, queries: np.ndarray, name: str) -> None:
        requests = [models.QueryRequest(query=q, filter=self.filters[name], limit=common.K, with_payload=True) for q in queries]
        self.client.query_batch_points("raw", requests=requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100, help="single queries per round")
    parser.add_argument("--batch", type=int, default=20, help="queries in the batched call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--disk-n", type=int, default=10_000, help="points for the path= runs (fewer with --real-disk); 0 to skip")
    parser.add_argument("--real-disk", action="store_true", help="put path= on the real disk, not /dev/shm")
    parser.add_argument("--no-memory", action="store_true", help="skip the :memory: runs")
    args = parser.parse_args()

    results = common.Results()
    queries = data.queries(max(args.queries, args.batch), args.dims)
    if not args.no_memory:
        vectors, metadatas = data.vectors(args.n, args.dims), data.metadata(args.n)
        filters = {"none": None, "term": data.TERM, "range": data.band(args.n)}
        print(f"\n== local mode, :memory:, {args.n} x {args.dims}, top {common.K}, load {common.load_average():.1f}")
        raw = Raw(QdrantClient(location=":memory:"), vectors, metadatas, filters)
        with QdrantVectorStore(location=":memory:") as store:
            rows = common.overhead_table(results, "qdrant-memory", args.n, raw, common.VecbookSide(store, vectors, metadatas, filters), queries, args.queries, args.rounds, filters, args.batch)
        common.overhead_summary(rows)

    m = args.disk_n
    if m:
        vectors, metadatas = data.vectors(m, args.dims), data.metadata(m)
        filters = {"none": None, "term": data.TERM, "range": data.band(m)}
        shm = None if args.real_disk or not Path("/dev/shm").is_dir() else "/dev/shm"
        print(f"\n== local mode, path= ({'on disk' if shm is None else '/dev/shm'}), {m} x {args.dims}, top {common.K}, load {common.load_average():.1f}")
        with tempfile.TemporaryDirectory(dir=shm) as a, tempfile.TemporaryDirectory(dir=shm) as b:
            raw = Raw(QdrantClient(path=a), vectors, metadatas, filters)
            with QdrantVectorStore(path=b) as store:
                rows = common.overhead_table(results, "qdrant-path", m, raw, common.VecbookSide(store, vectors, metadatas, filters), queries, args.queries, args.rounds, filters, args.batch)
            raw.client.close()
        common.overhead_summary(rows)


if __name__ == "__main__":
    main()
