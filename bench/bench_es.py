"""Elasticsearch backend: vecbook's EsVectorStore against the raw official client, same operations.

Runs against ``$VECBOOK_ES_URL`` if set, else against the stand-in
(tests/helpers/es_standin) started in a subprocess, and says which. The stand-in's
figures measure client-side overhead plus a Python server, not Elasticsearch's speed.

    PYTHONPATH=src:. python bench/bench_es.py [--n 10000] [--dims 384] [--queries 100] [--rounds 3]

Both sides use the async client (vecbook's async API) on one event loop, driven from
the benchmark's thread, with the same serializer (orjson's when installed). Inserts go
in bulk requests of 1024 into an empty index (made untimed) and end with a refresh;
searches ask for the top 10 by approximate kNN, unfiltered, with a term filter and with
a numeric range (bench/data.py), one query per request or a batch in one call (vecbook:
``msearch``; raw: one ``msearch`` as well). The raw side's mapping indexes the metadata
fields it filters on and returns ``embedding`` as floats; vecbook's keeps the metadata
whole, indexes typed filter terms, and returns its exact vectors (base64) to rescore.
Ratios as in bench/common.py: inserts alternate sides per round, queries per query.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import elasticsearch  # noqa: E402
import numpy as np  # noqa: E402
from elasticsearch import AsyncElasticsearch, helpers  # noqa: E402

import common  # noqa: E402
import data  # noqa: E402
from vecbook import EsVectorStore, VectorNode  # noqa: E402

BATCH = 1024
# The raw client gets the serializer vecbook picks (orjson's, when installed), so both send the same bytes.
_ORJSON = getattr(elasticsearch, "OrjsonSerializer", None)
SERIALIZER = {"serializer": _ORJSON()} if _ORJSON else {}


def start_standin() -> tuple[str, subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": f"{common.ROOT / 'src'}{os.pathsep}{common.ROOT}", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.es_standin"], cwd=common.ROOT, env=env, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the stand-in did not start")
    return url, proc


def raw_query(spec: dict | None) -> dict | None:
    """The portable filters of this benchmark as an Elasticsearch query on the raw mapping."""
    if spec is None:
        return None
    ((key, cond),) = spec.items()
    if isinstance(cond, dict):
        return {"range": {f"metadata.{key}": cond}}
    return {"term": {f"metadata.{key}": cond}}


class Raw:
    """What a user of the official client would write for the same operations."""

    index = "rawbench"

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, vectors: np.ndarray, metadatas: list[dict], filters: dict):
        self.loop, self.vectors, self.metadatas = loop, vectors, metadatas
        self.es = AsyncElasticsearch(url, **SERIALIZER)
        self.ids, self.contents = data.ids(len(vectors)), data.contents(len(vectors))
        self.filters = {name: raw_query(spec) for name, spec in filters.items()}
        self.cpu: list[float] = []
        self.source: dict = {"includes": ["content", "metadata", "embedding"]}
        if (self.run(self.es.info()))["version"]["number"].split(".")[:2] >= ["9", "2"]:
            self.source["exclude_vectors"] = False  # vectors left _source by default in 9.2

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def timed_cpu(self, coro) -> None:
        """Run ``coro``, keeping this process's CPU seconds (the client's share; the server runs apart)."""
        cpu = time.process_time()
        self.run(coro)
        self.cpu.append(time.process_time() - cpu)

    def reset(self) -> None:
        async def go():
            await self.es.options(ignore_status=404).indices.delete(index=self.index)
            properties = {"category": {"type": "keyword"}, "rank": {"type": "long"}, "bucket": {"type": "long"}, "month": {"type": "keyword"}}
            embedding = {"type": "dense_vector", "dims": self.vectors.shape[1], "index": True, "similarity": "cosine", "index_options": {"type": "hnsw"}}
            mappings = {"dynamic": "strict", "properties": {"content": {"type": "text"}, "metadata": {"properties": properties}, "embedding": embedding}}
            await self.es.indices.create(index=self.index, mappings=mappings)

        self.run(go())

    def insert(self) -> None:
        async def go():
            actions = (
                {"_index": self.index, "_id": self.ids[i], "_source": {"content": self.contents[i], "metadata": self.metadatas[i], "embedding": self.vectors[i]}}
                for i in range(len(self.ids))
            )
            await helpers.async_bulk(self.es, actions, chunk_size=BATCH)
            await self.es.indices.refresh(index=self.index)

        self.timed_cpu(go())

    def _body(self, query: np.ndarray, name: str) -> dict:
        knn = {"field": "embedding", "query_vector": query, "k": common.K, "num_candidates": 100}
        if self.filters[name] is not None:
            knn["filter"] = self.filters[name]
        return {"knn": knn, "size": common.K, "_source": self.source}

    def search(self, query: np.ndarray, name: str) -> None:
        body = self._body(query, name)
        self.run(self.es.search(index=self.index, knn=body["knn"], size=body["size"], source=body["_source"]))

    def batch(self, queries: np.ndarray, name: str) -> None:
        self.run(self.es.msearch(searches=[part for q in queries for part in ({"index": self.index}, self._body(q, name))]))

    def close(self) -> None:
        self.run(self.es.options(ignore_status=404).indices.delete(index=self.index))
        self.run(self.es.close())


class Ours:
    """The same operations through EsVectorStore's async API."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, vectors: np.ndarray, metadatas: list[dict], filters: dict):
        self.loop, self.dims, self.filters = loop, vectors.shape[1], filters
        self.store = EsVectorStore(hosts=url, index_prefix="vbbench-", batch_size=BATCH)
        self.cpu: list[float] = []
        ids, contents = data.ids(len(vectors)), data.contents(len(vectors))
        self.nodes = [VectorNode(unique_id=ids[i], content=contents[i], metadata=metadatas[i], vector=vectors[i]) for i in range(len(ids))]

    run = Raw.run
    timed_cpu = Raw.timed_cpu

    def reset(self) -> None:
        self.run(self.store.async_delete_workspace("bench"))
        self.run(self.store.async_create_workspace("bench", dimensions=self.dims))

    def insert(self) -> None:
        self.timed_cpu(self.store.async_insert(self.nodes, "bench"))

    def search(self, query: np.ndarray, name: str) -> None:
        self.run(self.store.async_search_by_vector(query, "bench", top_k=common.K, filter_dict=self.filters[name]))

    def batch(self, queries: np.ndarray, name: str) -> None:
        self.run(self.store.async_batch_search(queries, "bench", top_k=common.K, filter_dict=self.filters[name]))

    def close(self) -> None:
        self.run(self.store.async_delete_workspace("bench"))
        self.run(self.store.async_close())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", "--nodes", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100, help="single queries per round")
    parser.add_argument("--batch", type=int, default=20, help="queries in the batched call")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc = None
    url = os.environ.get("VECBOOK_ES_URL")
    if url:
        target = f"live Elasticsearch at {url} (VECBOOK_ES_URL)"
    else:
        url, proc = start_standin()
        target = f"the stand-in (tests/helpers/es_standin) at {url}, in a subprocess; set VECBOOK_ES_URL for a real server"
    loop = asyncio.new_event_loop()
    try:
        vectors, metadatas = data.vectors(args.n, args.dims), data.metadata(args.n)
        queries = data.queries(max(args.queries, args.batch), args.dims)
        filters = {"none": None, "term": data.TERM, "range": data.band(args.n)}
        print(f"\n== {target}; client serializer {'orjson' if SERIALIZER else 'json'}")
        print(f"== {args.n} x {args.dims}, top {common.K}, load {common.load_average():.1f}")
        raw = Raw(url, loop, vectors, metadatas, filters)
        ours = Ours(url, loop, vectors, metadatas, filters)
        try:
            rows = common.overhead_table(common.Results(), "elasticsearch", args.n, raw, ours, queries, args.queries, args.rounds, filters, args.batch)
        finally:
            raw.close()
            ours.close()
        common.overhead_summary(rows)
        per_node = [statistics.median(side.cpu) / args.n * 1e6 for side in (raw, ours)]
        print(f"  insert, client CPU per node: raw {per_node[0]:.1f} µs, vecbook {per_node[1]:.1f} µs (the rest is the server's)")
    finally:
        loop.close()
        if proc is not None:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
