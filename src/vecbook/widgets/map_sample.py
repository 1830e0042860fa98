"""Which points the map reads: all of them up to ``max_points``, above it a stratified sample.

A plain random sample (what the map did before: keep a point when a hash of its
id falls below ``max_points / total``) is unbiased but not *stratified*: a small,
distinct group of documents can lose most of its points, or all of them, while
a big one keeps its share. Here the strata are regions of the embedding space
(the sign pattern of the vectors on 8 fixed random hyperplanes: up to 256 cones
around the origin, what cosine-similarity LSH uses). Every non-empty region keeps
at least ``floor`` points (all of its points if it has fewer; the floors
together take at most a quarter of the budget), the rest of the
budget is shared in proportion to region sizes, and inside a region the points
kept are those with the smallest id hash: deterministic (the same data gives the
same sample in every process and on every backend) and stable (adding a node
moves at most a few points in or out).
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["load_points", "stratified_rows", "id_hash_fractions"]

_PLANES = 8
_CHUNK = 65_536


def id_hash_fractions(ids) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per id (BLAKE2b of the id)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little") / 2.0**64 for i in ids),
        dtype=np.float64, count=len(ids))


def _strata(vectors: np.ndarray) -> np.ndarray:
    planes = np.random.default_rng(20_240_601).normal(size=(vectors.shape[1], _PLANES)).astype(np.float32)
    weights = (1 << np.arange(_PLANES)).astype(np.int32)
    codes = np.empty(len(vectors), dtype=np.int32)
    for start in range(0, len(vectors), _CHUNK):  # bounded temporaries at a million rows
        part = np.asarray(vectors[start:start + _CHUNK], dtype=np.float32)
        codes[start:start + len(part)] = ((part @ planes) > 0).astype(np.int32) @ weights
    return codes


def _quotas(sizes: np.ndarray, budget: int, floor: int) -> np.ndarray:
    """Points to keep per stratum: at least ``min(size, floor)``, the rest proportional (largest remainders)."""
    floor = max(1, min(floor, budget // (4 * max(int((sizes > 0).sum()), 1))))  # floors take at most a quarter
    base = np.minimum(sizes, floor)
    if base.sum() > budget:  # more regions than points to keep: plain proportions
        base = np.zeros_like(sizes)
    left = budget - base.sum()
    room = sizes - base
    share = room * (left / max(room.sum(), 1))
    quota = base + np.floor(share).astype(np.int64)
    short = budget - quota.sum()
    if short > 0:
        order = np.argsort(-(share - np.floor(share)), kind="stable")
        order = order[quota[order] < sizes[order]][:short]
        quota[order] += 1
    return np.minimum(quota, sizes)


def stratified_rows(ids, vectors: np.ndarray, budget: int, floor: int = 25) -> np.ndarray:
    """Row numbers (sorted) of a stratified sample of ``budget`` rows; see the module docstring."""
    n = len(ids)
    if budget >= n:
        return np.arange(n)
    codes = _strata(vectors)
    fractions = id_hash_fractions(ids)
    order = np.lexsort((fractions, codes))  # by stratum, then by id hash
    sizes = np.bincount(codes, minlength=1 << _PLANES).astype(np.int64)
    quota = _quotas(sizes, budget, floor)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    sorted_codes = codes[order]
    rank = np.arange(n) - starts[sorted_codes]
    return np.sort(order[rank < quota[sorted_codes]])


def load_points(store, workspace_id: str, max_points: int | None = None):
    """``(ids, contents, metadatas, vectors, total)`` of a workspace, sorted by id, a stratified sample above ``max_points``."""
    columns = store.read_columns(workspace_id)
    total = len(columns)
    ids = columns.ids
    rows = stratified_rows(ids, columns.vectors, max_points) if max_points and total > max_points else np.arange(total)
    rows = np.asarray(sorted(rows.tolist(), key=ids.__getitem__), dtype=np.int64)
    if len(rows) == total and (len(rows) < 2 or (rows[1:] > rows[:-1]).all()):
        return ids, columns.contents, columns.metadatas, columns.vectors, total  # already in order: no copies
    order = rows.tolist()
    vectors = columns.vectors[rows] if len(rows) else np.zeros((0, columns.vectors.shape[1]), np.float32)
    return [ids[r] for r in order], [columns.contents[r] for r in order], [columns.metadatas[r] for r in order], vectors, total
