"""ChromaVectorStore vs the raw chromadb client, same data and operations.

    PYTHONPATH=src python bench/bench_chroma.py [--n 10000] [--dims 384] [--queries 100] [--rounds 3] [--no-server]

Prints throughput for insert, search one query at a time (unfiltered, term filter,
numeric range) and 100 queries in one batched call, for the embedded client
(PersistentClient) and for a `chroma run` server started on a free loopback port,
and reads (100 nodes by id, and the 100 nodes a selective filter picks), with the ratio of
vecbook's time to the raw client's (target <= 1.5x, issue 13). Inserts
alternate sides round by round; queries alternate query by query (bench/common.py);
ratios are medians of paired ratios, with the range of the per-round medians.

Both sides upsert ids, vectors, documents and metadata (bench/data.py) in batches of
1024 into an empty cosine collection (made untimed: vecbook's delete_workspace also
deletes the records first, see chroma.py) and ask for the top 10 with what vecbook's
hits carry: document, metadata, vector and score (the raw side: documents, metadatas,
embeddings, distances). vecbook also stores the index that makes filters and reads exact
(see vecbook/stores/chroma/filters.py) and recomputes scores from the exact vectors. The
unfiltered searches are then timed again against the raw client asking for Chroma's
default fields only (no vectors): what fetching the vectors costs. Before each upsert
vecbook reads the ids' old metadata: Chroma's upsert merges metadata, so the keys an old
version had and the new one lacks must be set to None explicitly (for new ids that read
finds nothing and costs ~2 ms per 1024).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chromadb  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
import data  # noqa: E402
from vecbook import ChromaVectorStore  # noqa: E402

BATCH = 1024
TARGET = 1.5
SELECTIVE = {"bucket": 7}  # 1 % of the nodes: the filtered read


def raw_where(spec: dict | None) -> dict | None:
    """The portable filters of this benchmark in Chroma's own syntax."""
    if spec is None:
        return None
    ((key, cond),) = spec.items()
    if not isinstance(cond, dict):
        return {key: cond}
    return {"$and": [{key: {f"${op}": bound}} for op, bound in cond.items()]}


class Raw:
    """The same operations through chromadb alone."""

    def __init__(self, client, vectors: np.ndarray, metadatas: list[dict], filters: dict):
        self.client, self.vectors, self.metadatas = client, vectors, metadatas
        self.include = ["metadatas", "documents", "embeddings", "distances"]  # what vecbook's hits carry
        self.ids, self.contents = data.ids(len(vectors)), data.contents(len(vectors))
        self.where = {name: raw_where(spec) for name, spec in filters.items()}
        self.collection = None

    def reset(self) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_collection("raw")
        self.collection = self.client.create_collection("raw", metadata={"hnsw:space": "cosine"}, embedding_function=None)

    def insert(self) -> None:
        for s in range(0, len(self.ids), BATCH):
            e = min(s + BATCH, len(self.ids))
            self.collection.upsert(ids=self.ids[s:e], embeddings=self.vectors[s:e], metadatas=self.metadatas[s:e], documents=self.contents[s:e])

    def search(self, query: np.ndarray, name: str) -> None:
        self.batch(query[None, :], name)

    def batch(self, queries: np.ndarray, name: str) -> None:
        self.collection.query(query_embeddings=queries, n_results=common.K, where=self.where[name], include=self.include)

    def get(self, ids: list[str]) -> None:
        self.collection.get(ids=ids, include=["metadatas", "documents", "embeddings"])

    def select(self) -> None:
        self.collection.get(where=SELECTIVE, include=["metadatas", "documents", "embeddings"])


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


def overheads(results: common.Results, section: str, args, raw: Raw, store: ChromaVectorStore, data_: tuple) -> list:
    """The overhead table, then unfiltered searches again with the raw side asking for
    Chroma's default fields only (no vectors): how much of the time is fetching them."""
    vectors, metadatas, queries, filters = data_
    ours = common.VecbookSide(store, vectors, metadatas, filters)
    rows = common.overhead_table(results, section, args.n, raw, ours, queries, args.queries, args.rounds, filters, args.batch, target=TARGET)
    rows += reads(results, section, args, raw, store)
    raw.include = [field for field in raw.include if field != "embeddings"]
    rows += common.overhead_table(
        results, f"{section}, raw without vectors", args.n, raw, ours, queries, args.queries, args.rounds, {"none": None}, args.batch, target=TARGET, insert=False
    )
    for row in rows[-2:]:
        row.measure += " (raw without vectors)"
    return rows


def reads(results: common.Results, section: str, args, raw: Raw, store: ChromaVectorStore) -> list:
    """Reads, the sides taking turns: ``get`` of 100 ids (random, a new draw each round), and
    every node a selective term filter picks (``iter_workspace_nodes``; raw: ``get(where=...)``)."""
    rng = np.random.default_rng(5)
    draws = [[f"id{i}" for i in rng.choice(args.n, 100, replace=False)] for _ in range(20 * args.rounds)]
    turn = itertools.count()  # the sides take turns: each pair of calls reads the same ids
    ids = {"raw": lambda: draws[next(turn) // 2 % len(draws)], "vecbook": lambda: draws[next(turn) // 2 % len(draws)]}
    rows = []
    for measure, systems in [
        ("get 100 ids", {"raw": lambda: raw.get(ids["raw"]()), "vecbook": lambda: store.get(ids["vecbook"](), "bench")}),
        ("read 100 by filter", {"raw": raw.select, "vecbook": lambda: list(store.iter_workspace_nodes("bench", filter_dict=SELECTIVE))}),
    ]:
        load = common.load_average()
        samples = common.alternating(systems, len(draws), warmup=1)
        ratios = np.asarray(samples["vecbook"]) / np.asarray(samples["raw"])
        ratio = float(np.median(ratios))
        note = f"raw {100 / np.median(samples['raw']):,.0f} nodes/s; vecbook/raw per round {np.quantile(ratios, 0.1):.2f}-{np.quantile(ratios, 0.9):.2f} (10-90 %); load {load:.1f}"
        record = common.Record(section, "vecbook", measure, args.n, 100 / float(np.median(samples["vecbook"])), "nodes/s", ratio, "raw", f"<= {TARGET}x", ratio <= TARGET, note=note)
        rows.append(results.add(record))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100, help="single queries per round")
    parser.add_argument("--batch", type=int, default=100, help="queries in the batched call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-server", action="store_true", help="embedded mode only")
    parser.add_argument("--no-embedded", action="store_true", help="server mode only")
    args = parser.parse_args()

    vectors, metadatas = data.vectors(args.n, args.dims), data.metadata(args.n)
    queries = data.queries(max(args.queries, args.batch), args.dims)
    filters = {"none": None, "term": data.TERM, "range": data.band(args.n)}
    results = common.Results()
    if not args.no_embedded:
        print(f"\n== embedded (PersistentClient), {args.n} x {args.dims}, top {common.K}, load {common.load_average():.1f}")
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            raw = Raw(chromadb.PersistentClient(path=a), vectors, metadatas, filters)
            with ChromaVectorStore(store_dir=b) as store:
                rows = overheads(results, "chroma", args, raw, store, (vectors, metadatas, queries, filters))
            raw.client.close()
        common.overhead_summary(rows)
    if args.no_server:
        return
    print(f"\n== server (chroma run; both sides through HttpClient, which serves vecbook's sync calls), {args.n} x {args.dims}, top {common.K}, load {common.load_average():.1f}")
    with tempfile.TemporaryDirectory() as folder, chroma_server(folder) as (host, port):
        raw = Raw(chromadb.HttpClient(host=host, port=port), vectors, metadatas, filters)
        with ChromaVectorStore(host=host, port=port) as store:
            rows = overheads(results, "chroma-server", args, raw, store, (vectors, metadatas, queries, filters))
    common.overhead_summary(rows)


if __name__ == "__main__":
    main()
