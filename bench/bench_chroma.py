"""ChromaVectorStore vs the raw chromadb client, same data and operations.

    PYTHONPATH=src python bench/bench_chroma.py [--n 10000] [--dims 384] [--queries 100] [--no-server]

Prints throughput for insert, search one query at a time (unfiltered, term filter,
numeric range) and 100 queries in one batched call, for the embedded client
(PersistentClient) and for a `chroma run` server started on a free loopback port,
with the ratio of vecbook's time to the raw client's (target <= 1.2x). Each
operation runs ``--rounds`` times on each side, alternating; the best time counts.

Both sides upsert ids, vectors, documents and metadata in batches of 1024 into a
cosine collection and ask for the top 10. The raw side gets metadata, documents and
distances (Chroma's default); vecbook also gets vectors (its scores are recomputed
from them), stores the index and copies that make filters and reads exact (see
vecbook/stores/chroma_filters.py) and reads old metadata before each upsert.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import chromadb
import numpy as np

from vecbook import ChromaVectorStore, VectorNode

FILTERS = {None: (None, None), "term": ({"category": "c3"}, {"category": "c3"})}
FILTERS["range"] = ({"rank": {"gte": 1000, "lt": 6000}}, {"$and": [{"rank": {"$gte": 1000}}, {"rank": {"$lt": 6000}}]})


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
    """The same operations through chromadb alone."""

    def __init__(self, client, ids, vectors, metadatas, batch: int = 1024):
        self.client, self.ids, self.vectors, self.metadatas, self.batch = client, ids, vectors, metadatas, batch
        self.collection = None

    def insert(self) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_collection("raw")
        self.collection = self.client.create_collection("raw", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        for s in range(0, len(self.ids), self.batch):
            stop = min(s + self.batch, len(self.ids))
            self.collection.upsert(
                ids=self.ids[s:stop],
                embeddings=self.vectors[s:stop],
                metadatas=self.metadatas[s:stop],
                documents=[f"text {i}" for i in range(s, stop)],
            )

    def search(self, queries, flt, batched: bool = False) -> None:
        where = FILTERS[flt][1]
        for chunk in [queries] if batched else [q[None, :] for q in queries]:
            self.collection.query(query_embeddings=chunk, n_results=10, where=where, include=["metadatas", "documents", "distances"])


class Ours:
    def __init__(self, store: ChromaVectorStore, ids, vectors, metadatas):
        self.store, self.dims = store, vectors.shape[1]
        self.nodes = [VectorNode(unique_id=ids[i], content=f"text {i}", metadata=metadatas[i], vector=vectors[i]) for i in range(len(ids))]

    def insert(self) -> None:
        self.store.delete_workspace("bench")
        self.store.create_workspace("bench", dimensions=self.dims)
        self.store.insert(self.nodes, "bench")

    def search(self, queries, flt, batched: bool = False) -> None:
        filter_dict = FILTERS[flt][0]
        if batched:
            self.store.batch_search(queries, "bench", top_k=10, filter_dict=filter_dict)
            return
        for q in queries:
            self.store.search_by_vector(q, "bench", top_k=10, filter_dict=filter_dict)


def compare(title: str, raw: Raw, ours: Ours, queries, n_search: int, rounds: int) -> None:
    ops = {
        "insert": (len(ours.nodes), lambda side: side.insert()),
        "search": (n_search, lambda side: side.search(queries[:n_search], None)),
        "filtered (term)": (n_search, lambda side: side.search(queries[:n_search], "term")),
        "filtered (range)": (n_search, lambda side: side.search(queries[:n_search], "range")),
        "batch of 100": (100, lambda side: side.search(queries[:100], None, batched=True)),
        "batch of 100, term": (100, lambda side: side.search(queries[:100], "term", batched=True)),
    }
    best = {op: [float("inf"), float("inf")] for op in ops}
    for _ in range(rounds):
        for op, (_, run) in ops.items():
            best[op][0] = min(best[op][0], timed(lambda: run(raw)))
            best[op][1] = min(best[op][1], timed(lambda: run(ours)))
    print(f"\n{title} (best of {rounds}; per second: nodes inserted, queries answered)")
    print(f"{'operation':<20}{'raw /s':>12}{'vecbook /s':>12}{'vecbook/raw':>13}")
    for op, (count, _) in ops.items():
        t_raw, t_ours = best[op]
        print(f"{op:<20}{count / t_raw:>12.1f}{count / t_ours:>12.1f}{t_ours / t_raw:>12.2f}x")


@contextlib.contextmanager
def chroma_server(data_dir: str):
    """(host, port) of a `chroma run` on a free loopback port, stopped on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = shutil.which("chroma", path=os.path.dirname(sys.executable)) or "chroma"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    args = [exe, "run", "--path", data_dir, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(600):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).close()
                break
            time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-server", action="store_true", help="embedded mode only")
    args = parser.parse_args()

    ids, vectors, metadatas, queries = dataset(args.n, args.dims)
    queries = np.resize(queries, (max(args.queries, 100), args.dims))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        raw = Raw(chromadb.PersistentClient(path=a), ids, vectors, metadatas)
        with ChromaVectorStore(store_dir=b) as store:
            compare(f"embedded (PersistentClient), {args.n} x {args.dims}, top 10", raw, Ours(store, ids, vectors, metadatas), queries, args.queries, args.rounds)
        raw.client.close()
    if args.no_server:
        return
    with tempfile.TemporaryDirectory() as data, chroma_server(data) as (host, port):
        raw = Raw(chromadb.HttpClient(host=host, port=port), ids, vectors, metadatas)
        with ChromaVectorStore(host=host, port=port) as store:
            compare(f"server (chroma run; raw HttpClient, vecbook AsyncHttpClient), {args.n} x {args.dims}, top 10", raw, Ours(store, ids, vectors, metadatas), queries, args.queries, args.rounds)


if __name__ == "__main__":
    main()
