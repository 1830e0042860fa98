"""The parts of a large UMAP outside umap-learn: a sample, its neighbour graph, and placing the rest.

UMAP is fitted on a fixed random sample (every point when the map is small);
each other point is then put at the distance-weighted mean of the layout
positions of its nearest sampled points in vector space. The neighbours come
from a usearch HNSW index over the sample (the library the stores' ``ann``
index uses), which releases the GIL while it searches, so the kernel stays
responsive; it also gives UMAP its k-NN graph, so umap-learn never runs its
own (a Python-level pairwise loop below 4,096 points, numba-compiled
NN-descent above).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import MissingDependencyError

__all__ = ["METRICS", "NeighbourIndex", "place", "sample_indices"]

METRICS = {"cosine": "cos", "euclidean": "l2sq"}  # umap metric -> usearch metric
# Placing 40k points beside a 10k sample's UMAP (50k x 384 clustered, bench/bench_projection.py): the map's
# 10-NN overlap with vector space was 0.30 for k=3 at ef=10, 0.26 for k=5, 0.25 for k=1 (points stacked on
# their neighbour) and 0.06 for k=10 (a mean over 10 neighbours blurs into the gaps between clusters);
# ef=10 was 2.5x faster than ef=32.
PLACE_K, PLACE_EF = 3, 10
QUERY_THREADS = max(1, (os.cpu_count() or 2) - 1)


def sample_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``size`` row numbers out of ``n`` (all of them if ``n <= size``), sorted, the same for the same ``n``."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


class NeighbourIndex:
    """Nearest neighbours among ``points`` (float32 rows) for ``metric`` ("cosine" or "euclidean")."""

    def __init__(self, points: np.ndarray, metric: str = "cosine"):
        if metric not in METRICS:
            raise ValueError(f"UMAP metric must be one of {', '.join(METRICS)}, got {metric!r}")
        try:
            from usearch.index import Index
        except ImportError as exc:
            raise MissingDependencyError("usearch", "notebook", feature="UMAP maps") from exc
        self.points = np.ascontiguousarray(points, dtype=np.float32)
        self.metric = metric
        # One build thread: the graph, hence the map, is then the same for the same data, and the kernel keeps
        # a core. Connectivity 8 built 3x faster than 16 (30k x 384); its lower recall only blurs UMAP's graph
        # and the placement weights slightly. Half-precision copies: against hnswlib's float32 graph at 50k and
        # 200k (bench/bench_map_neighbours.py, docs/performance.md) the same recall in 1.0-1.6x the time;
        # usearch's float32 graph took 1.7-2.4x.
        self._index = Index(ndim=self.points.shape[1], metric=METRICS[metric], dtype="f16", connectivity=8,
                            expansion_add=40)
        self._index.add(np.arange(len(self.points), dtype=np.uint64), self.points, threads=1)

    def query(self, rows: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices into ``points`` (int32) and distances (float32) of each row's ``k`` nearest, nearest first.

        ``ef`` is the search breadth (default ``2k``, at least 32): more is slower and more exact."""
        rows = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, self.points.shape[1])
        k = min(k, len(self.points))
        self._index.expansion_search = max(k, ef if ef is not None else max(2 * k, 32))
        # Searches are read-only, so threads keep results identical; one core stays the kernel's.
        keys, dists = self._search(rows, k, exact=False)
        if self.metric == "euclidean":
            dists = np.sqrt(np.maximum(dists, 0))  # usearch's l2sq is squared
        return keys.astype(np.int32), np.maximum(dists, 0).astype(np.float32)

    def _search(self, rows: np.ndarray, k: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        found = self._index.search(rows, k, threads=QUERY_THREADS, exact=exact)
        if hasattr(found, "counts"):  # a batch: keys and distances are padded to k
            keys, dists, counts = found.keys, found.distances, found.counts
        else:  # one row: only the keys found
            keys, dists = np.zeros((1, k), np.uint64), np.full((1, k), np.inf, np.float32)
            keys[0, : len(found.keys)], dists[0, : len(found.keys)] = found.keys, found.distances
            counts = np.array([len(found.keys)])
        short = np.flatnonzero(counts < k)
        if len(short) and not exact:  # rows the graph could not reach k points from (none in the benchmarks)
            keys, dists = keys.copy(), dists.copy()
            keys[short], dists[short] = self._search(rows[short], k, exact=True)
        return keys, dists

    def graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Every point's ``k`` nearest among the points, itself first (umap-learn's ``precomputed_knn``)."""
        labels, dists = self.query(self.points, k)
        own = np.arange(len(self.points))
        missing = labels[:, 0] != own  # duplicates can outrank a point's own row: put it first
        if missing.any():
            labels[missing, 1:] = labels[missing, :-1]
            dists[missing, 1:] = dists[missing, :-1]
            labels[missing, 0] = own[missing]
        dists[:, 0] = 0.0  # not float rounding's 1e-7
        return labels, dists


def place(index: NeighbourIndex, layout: np.ndarray, vectors: np.ndarray, rows: np.ndarray, k: int = PLACE_K,
          chunk: int = 10_000) -> Iterator[tuple[int, np.ndarray]]:
    """Positions of ``vectors[rows]`` as the weighted mean of their ``k`` nearest sampled points' ``layout``.

    Weights fall off as 1/distance relative to the nearest, so a near-duplicate
    of a sampled point lands on it. Yields ``(start, coords)`` per chunk of
    ``rows``, gathered a chunk at a time: no copy of them all, and the gather,
    which holds the GIL (usearch's search does not), stays short.
    """
    layout = np.asarray(layout, dtype=np.float32)
    for start in range(0, len(rows), chunk):
        labels, dists = index.query(vectors[rows[start : start + chunk]], k, ef=max(k, PLACE_EF))
        weights = 1.0 / (dists + np.maximum(dists[:, :1], 1e-6))
        weights /= weights.sum(axis=1, keepdims=True)
        yield start, np.einsum("ij,ijd->id", weights, layout[labels]).astype(np.float32)

