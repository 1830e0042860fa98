"""A child process for the local backend's crash and concurrency tests.

``python -m tests.unit.local_child crash STORE SEED``: random inserts, upserts and
deletes; prints ``BEGIN <op json>`` before each call and ``ACK`` after it returns.
``python -m tests.unit.local_child append STORE SEED``: the same with new nodes only (a bulk
load: each compaction extends the published vector file).
``python -m tests.unit.local_child indexed STORE SEED``: the same mix on a store opened with
its saved graph mapped (``INDEX_PARAMS``): compactions carry the mapped graph over with the small
graph of the rows waiting beside it, or the waiting rows are folded in past ``WAITING_FLOOR``
(at a write, of stale entries or of waiting rows) and the graph saved whole.
``python -m tests.unit.local_child insert STORE PREFIX COUNT``: COUNT single-node inserts.
"""

from __future__ import annotations

import json
import random
import sys

import vecbook
from vecbook.stores import local  # the backend's tunables
from vecbook.stores.engine import table_index

INDEX_PARAMS = {"exact_below": 0}  # every search goes to the graph
INDEX_DIMS = 64  # 8 hashed dimensions give many equal vectors, which no HNSW graph keeps reachable


def crash_ops(seed: int, append_only: bool = False):
    rng = random.Random(seed)
    ids: list[str] = []
    deleted: list[str] = []
    n = 0
    while True:
        roll = rng.random()
        if roll < 0.5 or not ids or append_only:
            batch = [f"s{seed}-{n + i}" for i in range(rng.randint(1, 20))]
            nodes = [{"id": i, "content": f"{i} v0 {rng.random()}"} for i in batch]
            n += len(batch)
            if deleted and n % 3 == 0:  # now and then a deleted id comes back (a hole's id held by a later row)
                batch.append(deleted.pop())
                nodes.append({"id": batch[-1], "content": f"{batch[-1]} back at {n}"})
            ids.extend(batch)
            yield {"op": "insert", "nodes": nodes}
        elif roll < 0.8:
            chosen = rng.sample(ids, min(len(ids), rng.randint(1, 5)))
            yield {"op": "insert", "nodes": [{"id": i, "content": f"{i} v{rng.randint(1, 9)} {rng.random()}"} for i in chosen]}
        else:
            chosen = rng.sample(ids, min(len(ids), rng.randint(1, 5)))
            for i in chosen:
                ids.remove(i)
            deleted.extend(chosen)
            yield {"op": "delete", "ids": chosen + ["never-existed"]}


def run_crash(store_dir: str, seed: int, append_only: bool = False, indexed: bool = False) -> None:
    local.MIN_COMPACT_BYTES = 16 << 10  # compact often, so kills land inside compactions too
    index = {"index": "hnsw", "index_params": INDEX_PARAMS} if indexed else {}
    model = vecbook.HashEmbeddingModel(INDEX_DIMS if indexed else 8)
    store = vecbook.LocalVectorStore(embedding_model=model, store_dir=store_dir, **index)
    store.create_workspace("ws")
    ops = crash_ops(seed, append_only)
    if indexed:
        table_index.WAITING_FLOOR = 1000  # ~500 writes (1.2 s here): most trials are killed while compactions carry the graph over, some after a fold
        table_index.WAITING_SHARE = 1 << 30
        local.CHECKPOINT_BYTES = 0  # the close below saves the graph
        for op in [next(ops) for _ in range(30)]:  # saved with its graph, then opened again: the graph a map
            _run(store, op)
        store.close()
        store = vecbook.LocalVectorStore(embedding_model=model, store_dir=store_dir, **index)
    for op in ops:
        _run(store, op)


def _run(store, op: dict) -> None:
    print("BEGIN " + json.dumps(op), flush=True)
    if op["op"] == "insert":
        store.insert([vecbook.VectorNode(unique_id=n["id"], content=n["content"], metadata={"c": n["content"]}) for n in op["nodes"]], "ws")
    else:
        store.delete(op["ids"], "ws")
    print("ACK", flush=True)


SHARED = 10  # nodes every process of ``rewrite`` writes again and again


def shared_writes(prefix: str, count: int) -> list[tuple[int, str, str]]:
    """(after which own insert, shared id, content) of the ``rewrite`` mode, in order."""
    return [(i, f"shared-{(i // 5) % SHARED}", f"{prefix} rewrote at {i}") for i in range(0, count, 5)]


def run_insert(store_dir: str, prefix: str, count: int, rewrite: bool = False) -> None:
    local.MIN_COMPACT_BYTES = 16 << 10  # compactions race with the other writers
    store = vecbook.LocalVectorStore(embedding_model=vecbook.HashEmbeddingModel(8), store_dir=store_dir)
    store.create_workspace("ws")
    shared = {i: (node_id, content) for i, node_id, content in shared_writes(prefix, count)} if rewrite else {}
    for i in range(count):
        store.insert(vecbook.VectorNode(unique_id=f"{prefix}-{i}", content=f"{prefix} {i}"), "ws")
        if i in shared:  # a node the published snapshot most likely holds: it moves to a new row
            store.insert(vecbook.VectorNode(unique_id=shared[i][0], content=shared[i][1]), "ws")
    store.close()  # waits for a compaction in flight
    print("DONE", flush=True)


if __name__ == "__main__":
    if sys.argv[1] in ("crash", "append", "indexed"):
        run_crash(sys.argv[2], int(sys.argv[3]), append_only=sys.argv[1] == "append", indexed=sys.argv[1] == "indexed")
    else:
        run_insert(sys.argv[2], sys.argv[3], int(sys.argv[4]), rewrite=sys.argv[1] == "rewrite")
