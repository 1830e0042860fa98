"""The parts of a large UMAP outside umap-learn: a sample, its neighbour graph, and placing the rest.

UMAP is fitted on a fixed random sample (every point when the map is small);
each other point is then put at the distance-weighted mean of the layout
positions of its nearest sampled points in vector space. The neighbours come
from an hnswlib index over the sample, which releases the GIL while it
searches, so the kernel stays responsive; it also gives UMAP its k-NN graph, so
umap-learn never runs its own (a Python-level pairwise loop below 4,096 points,
numba-compiled NN-descent above).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import MissingDependencyError

__all__ = ["METRICS", "NeighbourIndex", "place", "sample_indices"]

METRICS = {"cosine": "cosine", "euclidean": "l2"}  # umap metric -> hnswlib space
# Placing 40k points beside a 10k sample's UMAP (50k x 384 clustered, bench/bench_projection.py): the map's
# 10-NN overlap with vector space was 0.30 for k=3 at ef=10, 0.26 for k=5, 0.25 for k=1 (points stacked on
# their neighbour) and 0.06 for k=10 (a mean over 10 neighbours blurs into the gaps between clusters);
# ef=10 was 2.5x faster than ef=32.
PLACE_K, PLACE_EF = 3, 10
QUERY_THREADS = max(1, (os.cpu_count() or 2) - 1)
EXACT_BELOW = 4_096  # hnswlib may return fewer than k hits on tiny sets; exact search is instant there


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
        self.points = np.ascontiguousarray(points, dtype=np.float32)
        self.metric = metric
        self._index = None
        if len(self.points) >= EXACT_BELOW:
            try:
                import hnswlib
            except ImportError as exc:
                raise MissingDependencyError("hnswlib", "notebook", feature="UMAP of large maps") from exc
            # One thread: the build is then deterministic, the kernel keeps a core, and on 2 busy cores a
            # second thread measured no faster. M=8 builds 3x faster than M=16 (30k x 384: 4.5 s vs 12 s);
            # its lower recall (0.9 at ef=32) only blurs UMAP's graph and the placement weights slightly.
            index = hnswlib.Index(space=METRICS[metric], dim=self.points.shape[1])
            index.init_index(len(self.points), M=8, ef_construction=40, random_seed=0)
            index.add_items(self.points, num_threads=1)
            self._index = index

    def query(self, rows: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices into ``points`` (int32) and distances (float32) of each row's ``k`` nearest, nearest first.

        ``ef`` is hnswlib's search breadth (default ``2k``, at least 32): more is slower and more exact."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        k = min(k, len(self.points))
        if self._index is None:
            return self._exact(rows, k)
        self._index.set_ef(max(k, ef if ef is not None else max(2 * k, 32)))
        # Searches are read-only, so threads keep results identical; one core stays the kernel's.
        labels, dists = self._index.knn_query(rows, k=k, num_threads=QUERY_THREADS)
        if self.metric == "euclidean":
            dists = np.sqrt(np.maximum(dists, 0))  # hnswlib's l2 is squared
        return labels.astype(np.int32), dists.astype(np.float32)

    def _exact(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        points = self.points
        if self.metric == "cosine":
            points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
            unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            dist = 1.0 - unit @ points.T
        else:
            dist = np.sqrt(np.maximum((rows**2).sum(1)[:, None] - 2 * rows @ points.T + (points**2).sum(1)[None, :], 0))
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return order.astype(np.int32), np.maximum(np.take_along_axis(dist, order, axis=1), 0).astype(np.float32)

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
    which holds the GIL (hnswlib's search does not), stays short.
    """
    layout = np.asarray(layout, dtype=np.float32)
    for start in range(0, len(rows), chunk):
        labels, dists = index.query(vectors[rows[start : start + chunk]], k, ef=max(k, PLACE_EF))
        weights = 1.0 / (dists + np.maximum(dists[:, :1], 1e-6))
        weights /= weights.sum(axis=1, keepdims=True)
        yield start, np.einsum("ij,ijd->id", weights, layout[labels]).astype(np.float32)

