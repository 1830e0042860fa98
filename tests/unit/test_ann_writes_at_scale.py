"""Writes after an open at a user's size: 100,000 nodes saved with their graph, then a notebook's worth of writes.

The smaller tests in test_ann_writes_after_open.py lower the limits to reach each case; this one
keeps the defaults (``WAITING_FLOOR``, ``WAITING_SHARE``, the compaction thresholds) so that what
it checks is what a user with a 100k workspace meets. The 1M and 10M figures are in
docs/performance.md (bench/bench_scale_after_open.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_ann import graph_work, ids, requires_usearch
from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode
from vecbook.stores.engine import table_index

N, CALL = 100_000, 1_000
WAITED = 9_000  # new nodes written before the limit (10,000 waiting rows at 100k) is reached


def clustered(n: int, seed: int, dims: int) -> np.ndarray:
    """Unit vectors around 2,000 fixed centres: near neighbours exist, as among embeddings of related texts."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).standard_normal((2000, dims)).astype(np.float32)
    v = centres[rng.integers(0, 2000, n)] + 0.6 * rng.standard_normal((n, dims)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def batch(vectors: np.ndarray, start: int, content: str = "text") -> list[VectorNode]:
    return [VectorNode(unique_id=f"n{start + i}", content=f"{content} {start + i}", metadata={"part": (start + i) % 7}, vector=v) for i, v in enumerate(vectors)]


def recall(store, exact, queries: np.ndarray) -> float:
    got, want = store.batch_search(queries, "w", top_k=10), exact.batch_search(queries, "w", top_k=10)
    for hits in got:
        assert len(set(ids(hits))) == len(hits) == 10  # each node once, though it may be in both graphs
    return float(np.mean([len(set(ids(a)) & set(ids(b))) / 10 for a, b in zip(got, want)]))


@requires_usearch
@pytest.mark.slow
@pytest.mark.parametrize(("quantization", "dims"), [(None, 48), ("int8", 48), ("binary", 384)])  # sign bits need room
def test_a_100k_store_opened_with_its_graph_finds_the_writes_made_since_as_exact_search_does(tmp_path, monkeypatch, quantization, dims):
    """9,000 new nodes, 1,000 rewritten and 1,000 deleted after the open, in calls of 1,000: no call copies
    the 100k graph, every search answers as exact search does (recall@10 ≥ 0.95, deleted nodes never,
    rewritten ones at their new place). The next call of new nodes would leave more rows waiting than the
    limit: it takes them into the graph (one copy), the close saves it, and the next open finds them all
    in one graph."""
    params = {"quantization": quantization}
    vectors = clustered(N, 1, dims)
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    exact = MemoryVectorStore()
    for store_ in (store, exact):
        store_.create_workspace("w")
        for start in range(0, N, 10_000):
            store_.insert(batch(vectors[start : start + 10_000], start), "w")
    store.close()
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    assert store._state("w").table.index.viewed  # the graph is the saved file, mapped
    work = graph_work(monkeypatch)

    fresh = clustered(10_000, 2, dims)
    rewritten = np.arange(5, N, 100)  # 1,000 nodes given new vectors
    deleted = np.arange(7, N, 100)  # 1,000 nodes deleted
    new_place = clustered(len(rewritten), 3, dims)  # half of them far from where they were, half nudged (re-embedded edits)
    nudged = vectors[rewritten[500:]] + 0.03 * np.random.default_rng(3).standard_normal((500, dims)).astype(np.float32)
    new_place[500:] = nudged / np.linalg.norm(nudged, axis=1, keepdims=True)
    for store_ in (store, exact):
        for start in range(0, WAITED, CALL):
            store_.insert(batch(fresh[start : start + CALL], N + start, "new"), "w")
        store_.insert([VectorNode(unique_id=f"n{i}", content="moved", vector=v) for i, v in zip(rewritten, new_place)], "w")
        store_.delete([f"n{i}" for i in deleted], "w")
    table = store._state("w").table
    assert work == [] and table.index.viewed  # nothing copied: 10,000 rows wait in the small graph, the limit
    assert len(table._side) == len(table._unindexed) == table_index.waiting_max(len(table.index)) == 10_000
    # each deleted or rewritten node leaves one stale entry in the graph: a gone label (deleted, or moved off a
    # row the snapshot holds) or a replaced one (rewritten on a row written since the snapshot)
    assert len(table._gone) + table._replaced == 2_000 and store.count("w") == exact.count("w") == N + WAITED - 1_000

    noise = np.random.default_rng(4).standard_normal((100, dims)).astype(np.float32) * 0.05
    queries = np.vstack([clustered(100, 5, dims), fresh[::100] + noise, new_place[::10], new_place[505::10]])
    assert recall(store, exact, queries) >= 0.95
    gone = {f"n{i}" for i in deleted}
    for node_id, vector in [*zip((f"n{N + i}" for i in range(0, WAITED, 97)), fresh[:WAITED:97]), *zip((f"n{i}" for i in rewritten[::13]), new_place[::13])]:
        hits = store.search_by_vector(vector, "w", top_k=10)
        assert ids(hits)[0] == node_id and not gone & set(ids(hits))
        assert hits[0].metadata["score"] == pytest.approx(1.0, abs=1e-5)  # the exact score of its own vector
    current = np.vstack([vectors, fresh])
    current[rewritten] = new_place
    for query, hits in zip(queries, store.batch_search(queries, "w", top_k=10)):  # scored by each node's vector now
        rows = [int(h.unique_id[1:]) for h in hits]
        assert [h.metadata["score"] for h in hits] == pytest.approx(current[rows] @ (query / np.linalg.norm(query)), abs=1e-5)  # cosine

    for store_ in (store, exact):  # past the limit: this call takes what waits into the graph
        store_.insert(batch(fresh[WAITED:], N + WAITED, "new"), "w")
    assert work == [("copy", N)] and table._side is None and not table.index.viewed  # one copy, no build
    assert ids(store.search_by_vector(fresh[-1], "w", top_k=1)) == [f"n{N + 9_999}"]
    store.close()
    assert work == [("copy", N)]
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    table = again._state("w").table
    assert table.index.viewed and table._side is None and not table._gone
    assert len(table.index) == again.count("w") == N + 10_000 - 1_000
    assert recall(again, exact, queries) >= 0.95
    again.close()
    exact.close()
