"""Every node a graph holds can be found: by its own vector, among its nearest.

usearch's ``add`` on several threads can leave a node in the graph that no search reaches
(unum-cloud/USearch#735; about 1 in 10,000 here); ``HnswIndex._reattach`` adds such nodes
again on one thread. docs/performance.md has what that costs.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_ann import requires_usearch
from vecbook import MemoryVectorStore, VectorNode

N, DIMS, CALL = 40_000, 64, 5_000


@requires_usearch
@pytest.mark.slow
@pytest.mark.parametrize("quantization", [None, "int8"])
def test_every_node_added_on_several_threads_is_found_by_its_own_vector(quantization):
    """Without the second look, 26 of these 40,000 nodes are not among their own ten nearest (4 threads on
    2 cores; none on one thread): more threads strand more nodes."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((400, DIMS)).astype(np.float32)
    vectors = centres[rng.integers(0, 400, N)] + 0.5 * rng.standard_normal((N, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = MemoryVectorStore(index="hnsw", index_params={"quantization": quantization, "threads": 4})
    store.create_workspace("w")
    for start in range(0, N, CALL):  # each call's rows go into the graph on 4 threads
        store.insert([VectorNode(unique_id=f"n{i}", content="", vector=vectors[i]) for i in range(start, start + CALL)], "w")
    assert store._state("w").table.uses_index(10)
    lost = []
    for start in range(0, N, 4_000):
        hits = store.batch_search(vectors[start : start + 4_000], "w", top_k=10)
        lost += [f"n{start + i}" for i, found in enumerate(hits) if f"n{start + i}" not in {h.unique_id for h in found}]
    assert lost == []
    store.close()
