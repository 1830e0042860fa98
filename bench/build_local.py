"""Fill a local workspace ``bench`` with N clustered 384-d nodes (batches of --batch per call); print nodes/s.

    python bench/build_local.py STORE_DIR N [--batch 1000] [--index hnsw]
"""

from __future__ import annotations

import argparse
import json
import time

import data
from vecbook import LocalVectorStore
from vecbook.node import VectorNode

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("n")
parser.add_argument("--batch", type=int, default=1000)
parser.add_argument("--index")
args = parser.parse_args()
n = data.parse_size(args.n)
vectors, metas = data.vectors(n, 384), data.metadata(n)
store = LocalVectorStore(store_dir=args.folder, index=args.index)
store.create_workspace("bench")
chunks = []
for start in range(0, n, args.batch):
    stop = min(n, start + args.batch)
    chunks.append([
        VectorNode.model_construct(unique_id=f"id{i}", workspace_id="bench", content=f"text {i}", metadata=metas[i], vector=vectors[i])
        for i in range(start, stop)
    ])
t = time.perf_counter()
for nodes in chunks:
    store.insert(nodes, "bench")
insert_s = time.perf_counter() - t
store.wait_for_compaction()
store.close()
total_s = time.perf_counter() - t
print(json.dumps({"n": n, "insert_nodes_per_s": n / insert_s, "with_close_nodes_per_s": n / total_s}))
