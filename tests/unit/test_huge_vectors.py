"""Vectors so large that float32 scores overflow: the in-RAM search must still rank exactly."""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode

BIG = 1e20  # float32 holds it; a product of two such components (1e40) does not fit in float32


def exact_order(query: np.ndarray, vectors: np.ndarray, distance: str) -> np.ndarray:
    q, x = query.astype(np.float64), vectors.astype(np.float64)
    if distance == "cosine":
        scores = x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    elif distance == "dot":
        scores = x @ q
    else:
        scores = -np.linalg.norm(x - q, axis=1)
    return np.argsort(-scores, kind="stable")


@pytest.mark.parametrize("backend", ["memory", "local"])
@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_overflowing_float32_scores_still_rank_exactly(backend, distance, tmp_path):
    rng = np.random.default_rng(3)
    vectors = (rng.standard_normal((60, 8)) * BIG).astype(np.float32)  # every float32 dot product overflows
    vectors[:5] = rng.standard_normal((5, 8)).astype(np.float32)  # and a few ordinary ones
    store = MemoryVectorStore(distance=distance) if backend == "memory" else LocalVectorStore(store_dir=tmp_path, distance=distance)
    store.create_workspace("w")
    store.insert([VectorNode(unique_id=f"n{i}", vector=v) for i, v in enumerate(vectors)], "w")
    # (from the first query, the small vectors are all ~1e20 away: ties in float64, so only the top 2)
    for query, k in ((vectors[17] * np.float32(0.5) + vectors[30] * np.float32(0.25), 2), (vectors[2], 3)):
        hits = store.search_by_vector(query, "w", top_k=k)
        assert [h.unique_id for h in hits] == [f"n{i}" for i in exact_order(query, vectors, distance)[:k]]
        assert all(np.isfinite(h.score) for h in hits)
    store.close()
