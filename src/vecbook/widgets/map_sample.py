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

Memory stays bounded by the sample, not the workspace: above ``max_points`` the
vectors are read ``_CHUNK`` nodes at a time by id (only their region is kept),
then those of the sampled nodes (10,000,000 x 384 would be 15 GB read at once).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np

from .projection import _one_blas_thread

__all__ = ["DEFAULT_MAX_POINTS", "PointsRead", "id_hash_fractions", "load_points", "strata_codes", "stratified_rows"]

DEFAULT_MAX_POINTS = 200_000
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


def strata_codes(vectors: np.ndarray) -> np.ndarray:
    """The region (0-255) of each vector: its sign pattern on the fixed random hyperplanes."""
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


def stratified_rows(ids, codes: np.ndarray, budget: int, floor: int = 25) -> np.ndarray:
    """Row numbers (sorted) of a stratified sample of ``budget`` rows; see the module docstring.

    ``codes`` are the rows' regions (:func:`strata_codes`); a row whose code is negative
    (a node gone while the regions were read) is never picked.
    """
    valid = np.flatnonzero(np.asarray(codes) >= 0)
    if budget >= len(valid):
        return valid
    codes = np.asarray(codes)[valid]
    fractions = id_hash_fractions([ids[r] for r in valid.tolist()] if len(valid) < len(ids) else ids)
    order = np.lexsort((fractions, codes))  # by stratum, then by id hash
    sizes = np.bincount(codes, minlength=1 << _PLANES).astype(np.int64)
    quota = _quotas(sizes, budget, floor)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    sorted_codes = codes[order]
    rank = np.arange(len(valid)) - starts[sorted_codes]
    return valid[np.sort(order[rank < quota[sorted_codes]])]


class PointsRead:
    """The map's read of a workspace (:func:`load_points`), started in a thread of its own.

    Started before the widgets' libraries are imported (a fresh kernel's first map imports
    pandas, ipywidgets and jupyter-scatter: 1.5-2.5 s holding the GIL), the copy of the
    vectors out of the store (which releases the GIL: 1.5 GB at 1,000,000 x 384) runs meanwhile.
    """

    def __init__(self, store, workspace_id: str, max_points: int | None = DEFAULT_MAX_POINTS):
        self.max_points = max_points
        self._future: Future = Future()
        threading.Thread(target=self._read, args=(store, workspace_id), name="vecbook-map-read", daemon=True).start()

    def _read(self, store, workspace_id: str) -> None:
        try:
            self._future.set_result(_read_points(store, workspace_id, self.max_points))
        except BaseException as exc:  # noqa: BLE001 - raised again by result(), in the caller's thread
            self._future.set_exception(exc)

    def result(self) -> tuple:
        """What :func:`load_points` returns (the store's error, if it failed, is raised here)."""
        return self._future.result()


def load_points(store, workspace_id: str, max_points: int | None = None, read: PointsRead | None = None) -> tuple:
    """``(ids, vectors, total, source_ids, source_rows)`` of a workspace: ids and vectors only, sorted by id,
    a stratified sample above ``max_points``.

    No content or metadata is decoded (the map fetches those on demand). Up to ``max_points``
    it is one ``read_columns(columns=["ids", "vectors"])``. ``source_ids`` are every id in the
    store's order as read, and ``source_rows[i]`` is the place of drawn point ``i`` among them:
    a later ``read_columns`` in the same order aligns its columns to the drawn points without
    a lookup per id. ``read``: the same read, started earlier by the caller (used if it was
    started with the same ``max_points``).
    """
    if read is None or read.max_points != max_points:
        return _read_points(store, workspace_id, max_points)
    return read.result()


def _read_points(store, workspace_id: str, max_points: int | None) -> tuple:
    if max_points and store.count(workspace_id) > max_points:
        source_ids, rows, vectors = _sample(store, workspace_id, max_points)
    else:
        head = store.read_columns(workspace_id, columns=["ids", "vectors"])
        source_ids, rows, vectors = head.ids, np.arange(len(head)), head.vectors
    picked = source_ids if len(rows) == len(source_ids) else [source_ids[r] for r in rows.tolist()]
    order = sorted(range(len(picked)), key=picked.__getitem__)
    if len(rows) == len(source_ids) and order == list(range(len(rows))):  # already in order: no copies
        return source_ids, vectors, len(source_ids), source_ids, rows
    order = np.asarray(order, dtype=np.int64)
    return [picked[r] for r in order.tolist()], vectors[order], len(source_ids), source_ids, rows[order]


def _sample(store, workspace_id: str, budget: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every id, the sampled rows among them and their vectors, reading ``_CHUNK`` vectors at a time."""
    ids = store.read_columns(workspace_id, columns=["ids"]).ids
    codes = np.full(len(ids), -1, dtype=np.int32)
    for start in range(0, len(ids), _CHUNK):
        where, vectors = _read_vectors(store, workspace_id, ids, np.arange(start, min(start + _CHUNK, len(ids))))
        codes[where] = strata_codes(vectors)
    return (ids, *_read_vectors(store, workspace_id, ids, stratified_rows(ids, codes, budget)))


def _read_vectors(store, workspace_id: str, ids: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vectors of ``ids[rows]`` by id, and the rows they are of (a node deleted meanwhile is left out)."""
    wanted = [ids[r] for r in rows.tolist()]
    got = store.read_columns(workspace_id, columns=["ids", "vectors"], node_ids=wanted)
    if got.ids == wanted:
        return rows, got.vectors
    found = set(got.ids)
    return rows[np.fromiter((i in found for i in wanted), dtype=bool, count=len(wanted))], got.vectors
