"""Qdrant local mode (qdrant-client, in memory: no server) on the benchmark workload.

    python peer_qdrant.py DATA_DIR STORE_DIR COUNT

Local mode on disk (``path=``) commits one sqlite row per point; in memory is
its fast configuration, so that is what is measured (no cold open).
"""

from __future__ import annotations

import sys
import time

from qdrant_client import QdrantClient, models

from _peer import emit, load, numpy_search, rss_bytes, timed_searches

data_dir, store_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vectors, queries, metas = load(data_dir)
n = len(vectors)
ref = numpy_search(vectors)

before = rss_bytes()
client = QdrantClient(":memory:")
client.create_collection("bench", vectors_config=models.VectorParams(size=vectors.shape[1], distance=models.Distance.COSINE))
t = time.perf_counter()
for s in range(0, n, 1024):
    e = min(n, s + 1024)
    payloads = [{**metas[i], "content": f"text {i}"} for i in range(s, e)]
    client.upsert("bench", points=models.Batch(ids=list(range(s, e)), vectors=vectors[s:e].tolist(), payloads=payloads), wait=True)
insert_s = time.perf_counter() - t
rss = rss_bytes() - before


def search(flt=None):
    def run(i):
        res = client.query_points("bench", query=queries[i % len(queries)].tolist(), limit=10, query_filter=flt, with_payload=True)
        return [p.id for p in res.points]

    return run


selective = models.Filter(must=[models.FieldCondition(key="bucket", match=models.MatchValue(value=7))])
broad = models.Filter(must=[models.FieldCondition(key="rank", range=models.Range(gte=n // 10))])
out = {"insert_s": insert_s, "rss_delta": rss}
out["search"] = timed_searches(search(), ref, queries, count)
out["selective"] = timed_searches(search(selective), ref, queries, max(3, count // 4))
out["broad"] = timed_searches(search(broad), ref, queries, max(3, count // 4))
emit(out)
