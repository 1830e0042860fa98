"""The older flowllm stores (``flowllm.storage.vector_store``, flowllm 0.1.7) on the benchmark workload.

    python peer_flowllm.py DATA_DIR STORE_DIR COUNT {local,memory}

flowllm embeds every node on insert, even one with a vector, and every query:
a lookup model hands back the pre-computed vectors, so no embedding API is
involved. Its local store re-reads the whole JSONL file on every search and
rewrites it on every insert, with pure-Python cosine: sizes are capped.
"""

from __future__ import annotations

import gc
import logging
import statistics
import sys
import time
from typing import ClassVar

from _peer import dir_bytes, emit, load, numpy_search, rss_bytes, timed_searches

data_dir, store_dir, count, which = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
vectors, queries, metas = load(data_dir)
n = len(vectors)
ref = numpy_search(vectors)

from loguru import logger  # noqa: E402

logger.remove()  # flowllm logs every call at INFO
logging.disable(logging.INFO)

from flowllm.embedding_model.base_embedding_model import BaseEmbeddingModel  # noqa: E402
from flowllm.schema.vector_node import VectorNode  # noqa: E402
from flowllm.storage.vector_store import LocalVectorStore, MemoryVectorStore  # noqa: E402


class Lookup(BaseEmbeddingModel):
    """Answers with the benchmark's own vectors: ``text i`` → node i, ``query j`` → query j."""

    model_name: str = "lookup"
    dimensions: int = vectors.shape[1]
    max_batch_size: int = 10_000
    table: ClassVar[dict] = {}

    def _get_embeddings(self, input_text):
        if isinstance(input_text, str):
            return self.table[input_text]
        return [self.table[t] for t in input_text]


Lookup.table.update({f"text {i}": vectors[i].tolist() for i in range(n)})
Lookup.table.update({f"query {j}": queries[j].tolist() for j in range(len(queries))})
Lookup.table["single"] = queries[0].tolist()

model = Lookup()
store = LocalVectorStore(embedding_model=model, store_dir=store_dir) if which == "local" else MemoryVectorStore(embedding_model=model, store_dir=store_dir)
store.create_workspace("bench")
gc.collect()
before = rss_bytes()
nodes = [VectorNode(unique_id=f"id{i}", content=f"text {i}", metadata=metas[i], vector=vectors[i].tolist()) for i in range(n)]
t = time.perf_counter()
store.insert(nodes, "bench")
insert_s = time.perf_counter() - t
del nodes  # what stays is what the store keeps
gc.collect()
rss = rss_bytes() - before


def search(flt=None):
    def run(i):
        return [int(node.unique_id[2:]) for node in store.search(f"query {i % len(queries)}", "bench", top_k=10, filter_dict=flt)]

    return run


out = {"insert_s": insert_s, "rss_delta": rss}
if which == "local":
    out["disk_bytes"] = dir_bytes(store_dir)
out["search"] = timed_searches(search(), ref, queries, count)
out["selective"] = timed_searches(search({"bucket": 7}), ref, queries, max(2, count // 2))
out["broad"] = timed_searches(search({"rank": {"gte": n // 10}}), ref, queries, max(2, count // 2))
singles = []
for j in range(3):
    t = time.perf_counter()
    store.insert(VectorNode(unique_id=f"single{j}", content="single", vector=queries[0].tolist()), "bench")
    singles.append(time.perf_counter() - t)
out["single_insert_ms"] = statistics.median(singles) * 1e3
emit(out)
