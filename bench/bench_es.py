"""Elasticsearch backend: vecbook's EsVectorStore against the raw official client, same operations.

Runs against ``$VECBOOK_ES_URL`` if set, else against the stand-in
(tests/helpers/es_standin) started in a subprocess, and says which. Prints
figures only; the stand-in's figures measure client-side overhead plus a
Python server, not Elasticsearch's speed.

    PYTHONPATH=src:. python bench/bench_es.py [--nodes 10000] [--dims 384] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import elasticsearch
from elasticsearch import AsyncElasticsearch, helpers

from vecbook import EsVectorStore, VectorNode

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ["AI", "tech", "science", "art", "news"]
# The raw client gets the serializer vecbook picks (orjson's, when installed), so both send the same bytes.
_ORJSON = getattr(elasticsearch, "OrjsonSerializer", None)
SERIALIZER = {"serializer": _ORJSON()} if _ORJSON else {}


def start_standin() -> tuple[str, subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.es_standin"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the stand-in did not start")
    return url, proc


def make_data(n: int, dims: int):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dims)).astype(np.float32)
    metadatas = [{"category": CATEGORIES[i % 5], "rank": i, "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"} for i in range(n)]
    queries = rng.standard_normal((64, dims)).astype(np.float32)
    return vectors, metadatas, queries


class Vecbook:
    """The operations through EsVectorStore (async API)."""

    label = "vecbook"

    def __init__(self, url: str, dims: int):
        self.store = EsVectorStore(hosts=url, index_prefix="vbbench-", batch_size=1024)
        self.dims = dims

    async def insert(self, vectors, metadatas) -> tuple[float, float]:
        await self.store.async_delete_workspace("bench")
        await self.store.async_create_workspace("bench", dimensions=self.dims)
        nodes = [VectorNode(unique_id=f"d{i}", content=f"document {i}", metadata=md, vector=v) for i, (md, v) in enumerate(zip(metadatas, vectors))]
        t0, cpu = time.perf_counter(), time.process_time()
        await self.store.async_insert(nodes, "bench")
        return time.perf_counter() - t0, time.process_time() - cpu

    async def search(self, query, filtered: bool) -> list:
        flt = {"category": "AI", "rank": {"gte": 1000, "lt": 6000}} if filtered else None
        return await self.store.async_search_by_vector(query, "bench", top_k=10, filter_dict=flt)

    async def close(self) -> None:
        await self.store.async_delete_workspace("bench")
        await self.store.async_close()


class Raw:
    """What a user of the official client would write for the same operations."""

    label = "raw client"
    index = "rawbench"

    def __init__(self, url: str, dims: int):
        self.es = AsyncElasticsearch(url, **SERIALIZER)
        self.dims = dims
        self.source: dict = {"includes": ["content", "metadata", "embedding"]}

    async def insert(self, vectors, metadatas) -> tuple[float, float]:
        es, index = self.es, self.index
        if (await es.info())["version"]["number"].split(".")[:2] >= ["9", "2"]:
            self.source["exclude_vectors"] = False  # vectors left _source by default in 9.2
        await es.options(ignore_status=404).indices.delete(index=index)
        await es.indices.create(
            index=index,
            mappings={
                "dynamic": "strict",
                "properties": {
                    "content": {"type": "text"},
                    "metadata": {"properties": {"category": {"type": "keyword"}, "rank": {"type": "long"}, "date": {"type": "keyword"}}},
                    "embedding": {"type": "dense_vector", "dims": self.dims, "index": True, "similarity": "cosine", "index_options": {"type": "hnsw"}},
                },
            },
        )
        actions = (
            {"_index": index, "_id": f"d{i}", "_source": {"content": f"document {i}", "metadata": md, "embedding": v}}
            for i, (md, v) in enumerate(zip(metadatas, vectors))
        )
        t0, cpu = time.perf_counter(), time.process_time()
        await helpers.async_bulk(self.es, actions, chunk_size=1024)
        await es.indices.refresh(index=index)
        return time.perf_counter() - t0, time.process_time() - cpu

    async def search(self, query, filtered: bool) -> list:
        knn = {"field": "embedding", "query_vector": query, "k": 10, "num_candidates": 100}
        if filtered:
            knn["filter"] = {"bool": {"filter": [{"term": {"metadata.category": "AI"}}, {"range": {"metadata.rank": {"gte": 1000, "lt": 6000}}}]}}
        resp = await self.es.search(index=self.index, knn=knn, size=10, source=self.source)
        return resp["hits"]["hits"]

    async def close(self) -> None:
        await self.es.options(ignore_status=404).indices.delete(index=self.index)
        await self.es.close()


async def run(url: str, args) -> dict:
    """Best time of each operation over alternating rounds (the machine may be shared: take the least disturbed)."""
    vectors, metadatas, queries = make_data(args.nodes, args.dims)
    sides = [Raw(url, args.dims), Vecbook(url, args.dims)]
    best: dict = {}
    def keep(label: str, op: str, elapsed: float, cpu: float) -> None:
        if elapsed < best.get((label, op), float("inf")):
            best[label, op], best[label, op + " cpu"] = elapsed, cpu

    for _ in range(args.rounds):
        for side in sides:
            keep(side.label, "insert", *await side.insert(vectors, metadatas))
            for filtered in (False, True):
                op = "filtered search" if filtered else "search"
                await side.search(queries[0], filtered)  # warm
                t0, cpu = time.perf_counter(), time.process_time()
                for i in range(args.queries):
                    hits = await side.search(queries[i % len(queries)], filtered)
                keep(side.label, op, time.perf_counter() - t0, time.process_time() - cpu)
                best[side.label, op + " hits"] = len(hits)
    for side in sides:
        await side.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc = None
    url = os.environ.get("VECBOOK_ES_URL")
    if url:
        print(f"target: live Elasticsearch at {url} (VECBOOK_ES_URL)")
    else:
        url, proc = start_standin()
        print(f"target: the in-process stand-in (tests/helpers/es_standin) at {url}, in a subprocess; set VECBOOK_ES_URL for a real server")
    try:
        print(f"client serializer: {'orjson' if SERIALIZER else 'json (install orjson for ~10x faster vector encoding)'}")
        print(f"{args.nodes} nodes x {args.dims} dims; {args.queries} sequential top-10 queries, unfiltered and with the filter "
              f"category == 'AI' and 1000 <= rank < 6000; best of {args.rounds} alternating rounds")
        best = asyncio.run(run(url, args))
        print(f"{'operation':<18}{'raw client':>18}{'vecbook':>18}{'vecbook/raw':>14}   client CPU per op, raw / vecbook")
        for op, unit, count in (("insert", "nodes/s", args.nodes), ("search", "q/s", args.queries), ("filtered search", "q/s", args.queries)):
            raw, ours = best["raw client", op], best["vecbook", op]
            per = 1e6 / count if op == "insert" else 1e3 / count
            cpu = f"{best['raw client', op + ' cpu'] * per:.2f} / {best['vecbook', op + ' cpu'] * per:.2f} {'µs/node' if op == 'insert' else 'ms/query'}"
            print(f"{op:<18}{count / raw:>10.0f} {unit:<7}{count / ours:>10.0f} {unit:<7}{ours / raw:>13.2f}x   {cpu}")
        print(f"hits per query (raw/vecbook): search {best['raw client', 'search hits']}/{best['vecbook', 'search hits']}, "
              f"filtered {best['raw client', 'filtered search hits']}/{best['vecbook', 'filtered search hits']}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
