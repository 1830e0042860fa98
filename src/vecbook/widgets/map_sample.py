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
kept are those with the smallest id hash (:func:`id_hash_fractions`): deterministic (the same data gives the
same sample in every process and on every backend) and stable (adding a node
moves at most a few points in or out).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np

from .projection import _one_blas_thread

__all__ = ["PointsRead", "load_points", "stratified_rows", "id_hash_fractions"]

_PLANES = 8
_CHUNK = 65_536


def id_hash_fractions(ids) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per id, in numpy: FNV-1a over the id's code
    points, then splitmix64's finaliser (a Python hash call per id cost seconds at a million)."""
    out = np.empty(len(ids), dtype=np.float64)
    for start in range(0, len(ids), _CHUNK):
        part = np.asarray(list(ids[start : start + _CHUNK]), dtype=str)
        width = part.dtype.itemsize // 4
        points = part.view(np.uint32).reshape(len(part), width).astype(np.uint64)
        lengths = np.char.str_len(part)
        h = np.full(len(part), 0xCBF29CE484222325, dtype=np.uint64)
        for j in range(width):
            step = (h ^ points[:, j]) * np.uint64(0x100000001B3)
            h = np.where(lengths > j, step, h)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        out[start : start + len(part)] = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return out


def _strata(vectors: np.ndarray) -> np.ndarray:
    planes = np.random.default_rng(20_240_601).normal(size=(vectors.shape[1], _PLANES)).astype(np.float32)
    weights = (1 << np.arange(_PLANES)).astype(np.int32)
    codes = np.empty(len(vectors), dtype=np.int32)
    with _one_blas_thread():  # BLAS's worker threads stall when other processes keep the cores busy
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


class PointsRead:
    """``read_columns(columns=["ids", "vectors"])`` of a workspace, started in a thread of its own.

    Started before the widgets' libraries are imported (a fresh kernel's first map imports
    pandas, ipywidgets and jupyter-scatter: 1.5-2.5 s holding the GIL), the copy of the
    vectors out of the store (which releases the GIL: 1.5 GB at 1,000,000 x 384) runs meanwhile.
    """

    def __init__(self, store, workspace_id: str):
        self._future: Future = Future()
        threading.Thread(target=self._read, args=(store, workspace_id), name="vecbook-map-read", daemon=True).start()

    def _read(self, store, workspace_id: str) -> None:
        try:
            self._future.set_result(store.read_columns(workspace_id, columns=["ids", "vectors"]))
        except BaseException as exc:  # noqa: BLE001 - raised again by result(), in the caller's thread
            self._future.set_exception(exc)

    def result(self):
        """The columns read (the store's error, if it failed, is raised here)."""
        return self._future.result()


def load_points(store, workspace_id: str, max_points: int | None = None, read: PointsRead | None = None):
    """``(ids, vectors, total, source_ids, source_rows)`` of a workspace: ids and vectors only, sorted by id,
    a stratified sample above ``max_points``.

    One ``read_columns(columns=["ids", "vectors"])`` call (``read``, if the caller started it
    earlier): no content or metadata is decoded (the map
    fetches those on demand). ``source_ids`` are the ids in the store's order as read, and
    ``source_rows[i]`` is the place of drawn point ``i`` among them: a later ``read_columns`` in the
    same order aligns its columns to the drawn points without a lookup per id.
    """
    head = (read or PointsRead(store, workspace_id)).result()
    total = len(head)
    rows = stratified_rows(head.ids, head.vectors, max_points) if max_points and total > max_points else np.arange(total)
    picked = head.ids if len(rows) == total else [head.ids[r] for r in rows.tolist()]
    order = sorted(range(len(picked)), key=picked.__getitem__)
    if len(rows) == total and order == list(range(total)):  # already in order: no copies
        return head.ids, head.vectors, total, head.ids, rows
    source_rows = rows[np.asarray(order, dtype=np.int64)] if len(rows) else rows
    vectors = head.vectors[source_rows] if len(rows) else head.vectors[:0]
    return [picked[r] for r in order], vectors, total, head.ids, source_rows
