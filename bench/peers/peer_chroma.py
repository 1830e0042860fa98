"""Chroma (embedded PersistentClient) on the benchmark workload.

    python peer_chroma.py DATA_DIR STORE_DIR COUNT [open]
"""

from __future__ import annotations

import sys
import time

import chromadb
from chromadb.config import Settings

from _peer import dir_bytes, emit, load, numpy_search, rss_bytes, timed_searches

data_dir, store_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vectors, queries, metas = load(data_dir)
n = len(vectors)
ref = numpy_search(vectors)
settings = Settings(anonymized_telemetry=False)

if len(sys.argv) > 4:  # cold open: a new process reopens what an earlier one wrote
    before = rss_bytes()
    t = time.perf_counter()
    col = chromadb.PersistentClient(path=store_dir, settings=settings).get_collection("bench")
    col.query(query_embeddings=[queries[0]], n_results=10)
    emit({"open_s": time.perf_counter() - t, "rss_delta": rss_bytes() - before})
    sys.exit()

before = rss_bytes()
client = chromadb.PersistentClient(path=store_dir, settings=settings)
col = client.create_collection("bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
step = min(5000, client.get_max_batch_size())
t = time.perf_counter()
for s in range(0, n, step):
    e = min(n, s + step)
    col.add(ids=[f"id{i}" for i in range(s, e)], embeddings=vectors[s:e], metadatas=metas[s:e], documents=[f"text {i}" for i in range(s, e)])
insert_s = time.perf_counter() - t
rss = rss_bytes() - before


def search(where=None):
    def run(i):
        res = col.query(query_embeddings=[queries[i % len(queries)]], n_results=10, where=where, include=["metadatas", "documents", "distances"])
        return [int(x[2:]) for x in res["ids"][0]]

    return run


out = {"insert_s": insert_s, "rss_delta": rss, "disk_bytes": dir_bytes(store_dir)}
out["search"] = timed_searches(search(), ref, queries, count)
out["selective"] = timed_searches(search({"bucket": 7}), ref, queries, count)
out["broad"] = timed_searches(search({"rank": {"$gte": n // 10}}), ref, queries, count)
emit(out)
