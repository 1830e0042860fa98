"""An optional approximate nearest-neighbour index (HNSW, via usearch) for the memory and local backends.

``pip install 'vecbook[ann]'``. The index maps integer *labels* to vectors; the
NodeTable owns the mapping from labels to rows. It is a cache: searches that
use it are approximate (the final scores are still recomputed exactly from the
table's float32 vectors), filtered searches never use it, and the local backend
may always rebuild it from the data.

``quantization`` (``index_params``) chooses what the graph holds and walks:
``None`` float32 copies, ``"int8"`` scalar codes (a quarter of the float32 size)
or ``"binary"`` sign bits (1/32). A quantized graph returns ``rerank`` times as
many candidates as asked for, and the table keeps the best of them by their exact
score, so the scores a search returns are always the exact float32 ones.

usearch was chosen by measurement (``bench/bench_ann_libs.py``, docs/performance.md):
close to hnswlib for float32 graphs, and it alone of those measured offers int8
and binary graphs and opening a saved graph as a memory map (``view``), which is
what lets a large index open without being read.

Persistence (``ann_files.py``): a saved index is three files beside a snapshot.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import MissingDependencyError, ValidationError
from .scoring import exact_scores

__all__ = ["QUANTIZATIONS", "HnswIndex", "IndexSpec", "Waiting", "best_rows", "make_spec"]

_METRICS = {"cosine": "cos", "dot": "ip", "euclidean": "l2sq"}
_KINDS = ("hnsw",)
QUANTIZATIONS = (None, "int8", "binary")
_DTYPES = {None: "f32", "int8": "i8", "binary": "b1"}
# Candidates re-scored exactly per wanted result: recall@10 ≥ 0.95 on MiniLM and clustered
# vectors at the default ef (bench/bench_ann_libs.py, docs/performance.md).
_RERANK = {None: 1, "int8": 3, "binary": 20}
REATTACH_LOOKS = ((8, 1), (64, 10))  # (ef, nearest) of each look for the nodes a concurrent add placed (HnswIndex._reattach)
_INT_PARAMS = ("M", "ef_construction", "ef_search", "threads", "exact_below", "rerank")


def _usearch() -> Any:
    try:
        from usearch import index
    except ImportError as exc:
        raise MissingDependencyError("usearch", "ann", feature="index='hnsw'") from exc
    return index


@dataclass(frozen=True)
class IndexSpec:
    """How to build an index. ``ef_search`` is raised to the number of candidates when a search asks for more.

    Workspaces with fewer than ``exact_below`` nodes are searched exactly: a matrix
    product over them takes well under a millisecond, so an index gains nothing there.
    """

    kind: str = "hnsw"
    M: int = 16
    ef_construction: int = 128
    # recall@10 on 1M clustered vectors: 0.956 at ef 128, 0.998-0.9995 at 200 (docs/performance.md)
    ef_search: int = 200
    threads: int = 0  # 0: every core for bulk adds and batch searches
    exact_below: int = 10_000
    quantization: str | None = None  # None (float32), "int8" or "binary"
    rerank: int = 0  # candidates re-scored exactly per result; 0: the quantization's default

    @property
    def candidates_per_result(self) -> int:
        return self.rerank or _RERANK[self.quantization]


@dataclass(frozen=True)
class Waiting:
    """What a graph mapped from its file does not hold yet (see ``table_index.py``): the labels of
    rows whose current vectors wait beside it, the labels of deleted rows it still holds, and the
    first label given since it last changed (labels from there on are not in it)."""

    unindexed: tuple[int, ...]
    gone: tuple[int, ...]
    graph_below: int

    def as_json(self) -> dict[str, Any]:
        return {"unindexed": list(self.unindexed), "gone": list(self.gone), "graph_below": self.graph_below}

    @classmethod
    def from_json(cls, meta: dict[str, Any]) -> Waiting:
        """From a saved index's sidecar; TypeError or ValueError if its entries are not what ``as_json`` writes."""
        unindexed, gone, below = meta["unindexed"], meta["gone"], meta["graph_below"]
        if not (isinstance(unindexed, list) and isinstance(gone, list) and all(type(x) is int for x in (*unindexed, *gone, below))):
            raise TypeError("the sidecar's waiting changes are not lists of labels")
        return cls(tuple(unindexed), tuple(gone), below)


def make_spec(index: Any, params: dict | None = None, distance: str | None = None) -> IndexSpec | None:
    """Turn a store's ``index=`` / ``index_params=`` arguments into an IndexSpec (or None: no index)."""
    if index is None or index is False:
        if params:
            raise ValidationError("index_params given without index='hnsw'")
        return None
    if isinstance(index, IndexSpec):
        return index
    if index not in _KINDS:
        raise ValidationError(f"unknown index {index!r}; use None (exact search) or 'hnsw'")
    params = dict(params or {})
    unknown = set(params) - {*_INT_PARAMS, "quantization"}
    if unknown:
        raise ValidationError(f"unknown index_params: {', '.join(sorted(unknown))}")
    quantization = params.get("quantization")
    if quantization not in QUANTIZATIONS:
        raise ValidationError(f"index_params['quantization'] must be None, 'int8' or 'binary', got {quantization!r}")
    if quantization is not None and distance not in (None, "cosine"):
        raise ValidationError(f"index_params['quantization']={quantization!r} needs distance='cosine', not {distance!r}")
    for key in _INT_PARAMS:
        value = params.get(key)
        if key in params and (isinstance(value, bool) or not isinstance(value, int) or value < (0 if key in ("threads", "exact_below", "rerank") else 2)):
            raise ValidationError(f"index_params[{key!r}] must be a positive integer, got {value!r}")
    _usearch()  # fail now, not at the first insert
    return IndexSpec(kind=index, **params)


class HnswIndex:
    """An HNSW graph over integer labels: add (or replace), remove, search, save, load.

    Labels are never reused: a new vector gets a new label. A graph opened from a
    file is a read-only memory map until the first change, which copies it into RAM
    (the table lets changes wait beside a mapped graph: see ``table_index.py``).
    """

    def __init__(self, dimensions: int, distance: str, spec: IndexSpec, *, capacity: int = 1024, _raw: Any = None, viewed: bool = False):
        if spec.quantization is not None and distance != "cosine":
            raise ValidationError(f"index_params['quantization']={spec.quantization!r} needs distance='cosine', not {distance!r}")
        self.dimensions, self.distance, self.spec = dimensions, distance, spec
        self._threads = spec.threads or os.cpu_count() or 1
        self.viewed = viewed  # a memory map of a saved file: read-only
        self.source: tuple[Path, int] | None = None  # while viewed: the mapped file and its CRC-32, if known
        self._source_stat: os.stat_result | None = None  # that file's as it was mapped (see :meth:`mapped_from`)
        self.damaged = False  # set by the background check of a mapped file: never searched again
        self.verifier: threading.Thread | None = None  # that check, while it may still run
        if _raw is None:
            _raw = _usearch().Index(**self.settings(dimensions, distance, spec))
        self._raw = _raw
        self._ef = -1

    @staticmethod
    def settings(dimensions: int, distance: str, spec: IndexSpec) -> dict:
        binary = spec.quantization == "binary"
        return {
            "ndim": dimensions,
            "metric": "hamming" if binary else _METRICS[distance],
            "dtype": _DTYPES[spec.quantization],
            "connectivity": spec.M,
            "expansion_add": spec.ef_construction,
            "expansion_search": spec.ef_search,
        }

    def _codes(self, vectors: np.ndarray) -> np.ndarray:
        """What the graph stores for these float32 vectors (also used for queries)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.spec.quantization == "binary":
            return np.packbits(vectors > 0, axis=1)
        if self.spec.quantization == "int8":  # cosine only: scale each vector to unit length, then to ±127
            # norms in float64: a float32 vector's squares may overflow float32 (its components reach 3e38)
            with np.errstate(divide="ignore"):
                scale = 127.0 / np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
            scale[~np.isfinite(scale)] = 0.0  # a zero vector: zero codes
            scale = np.minimum(scale, np.finfo(np.float32).max).astype(np.float32)  # norms under 4e-37: short of ±127
            return np.rint(vectors * scale[:, None]).astype(np.int8)  # in float32: a tenth of float64's time
        return vectors

    def _writable(self) -> Any:
        if self.viewed:  # the map is read-only (usearch crashes on a change): copy it into RAM first
            self._raw, self.viewed, self._ef, self.source = self._raw.copy(), False, -1, None
        return self._raw

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert new labels, or replace the vectors of existing live ones."""
        if not len(labels):
            return
        raw = self._writable()
        labels = np.asarray(labels, dtype=np.uint64)
        present = raw.contains(labels)
        if present.any():
            raw.remove(labels[present])
        codes = self._codes(vectors)
        threads = self._threads if len(labels) >= 256 else 1
        raw.add(labels, codes, threads=threads)
        if threads > 1:
            self._reattach(labels, codes)

    def _reattach(self, labels: np.ndarray, codes: np.ndarray) -> None:
        """Add again, alone, the nodes a concurrent add left unreachable.

        usearch's ``add`` on several threads can leave a node in the graph that no search
        reaches (unum-cloud/USearch#735: 4-12 of 100,000 here on 2 threads, at any ef). Each node is
        looked for by its own codes, first cheaply (``REATTACH_LOOKS``: about 95 % are found
        at once), then wider; one still not among its nearest is removed and added again on
        one thread. About 15 % of the add's time (docs/performance.md).
        """
        raw, doubt = self._raw, np.arange(len(labels))
        try:
            for ef, count in REATTACH_LOOKS:
                raw.expansion_search = ef
                found = raw.search(codes[doubt], count, threads=self._threads)
                keys, distances = np.atleast_2d(found.keys), np.atleast_2d(found.distances)
                missed = ~(keys == labels[doubt, None]).any(axis=1)
                tied = distances[:, -1] <= 1e-6  # as near as its own codes (equal codes): not lost
                doubt = doubt[missed & ~tied]
                if not len(doubt):
                    return
            raw.remove(labels[doubt])
            raw.add(labels[doubt], codes[doubt], threads=1)
        finally:
            raw.expansion_search = self._ef = self.spec.ef_search

    def holds(self, labels: np.ndarray) -> bool:
        """Whether every one of ``labels`` is in the graph."""
        return bool(self.holding(labels).all())

    def holding(self, labels: np.ndarray) -> np.ndarray:
        """A mask of ``labels`` (any shape): which of them are in the graph."""
        labels = np.asarray(labels, dtype=np.uint64)
        return np.asarray(self._raw.contains(labels.ravel()), dtype=bool).reshape(labels.shape)

    def remove(self, labels: np.ndarray) -> None:
        if len(labels):
            self._writable().remove(np.asarray(labels, dtype=np.uint64))

    def search(self, queries: np.ndarray, k: int, spare: int = 0) -> np.ndarray | None:
        """Labels of the nearest live elements per query (q × c, c ≥ k), or None if it cannot answer.

        ``c`` is ``k`` for a float32 graph; a quantized one returns up to
        ``rerank * k`` candidates, for :func:`best_rows` to narrow down exactly.
        ``spare`` asks for that many more (at most twice as many in all), to make up
        for candidates the caller knows may be stale.
        """
        if k <= 0 or self.damaged:
            return None
        asked = k * self.spec.candidates_per_result
        wanted = min(asked + min(spare, asked), len(self._raw))
        ef = max(self.spec.ef_search, 2 * k, wanted)
        if ef != self._ef:
            self._raw.expansion_search, self._ef = ef, ef
        threads = 1 if len(queries) == 1 else self._threads
        found = self._raw.search(self._codes(queries), wanted, threads=threads)
        if hasattr(found, "counts"):  # a batch of queries
            keys, got = found.keys, int(found.counts.min())
        else:  # one query: its keys are only the ones found
            keys, got = found.keys[None, :], len(found.keys)
        if got < k:  # fewer than k reachable (after many deletions): the caller goes exact
            return None
        return keys[:, :got].astype(np.int64)

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def nbytes(self) -> int:
        """RAM held by the graph and its codes (0 while it is a memory map of a file)."""
        return 0 if self.viewed else int(self._raw.memory_usage)

    def mapped_from(self, path: Path, crc: int) -> None:
        """Say which file the mapped graph is (its name may later be given to another file)."""
        self.source, self._source_stat = (path, crc), os.stat(path)

    def _still_named(self) -> bool:
        """Whether ``source``'s name is still the mapped file: another process's save may have replaced it."""
        try:
            now = os.stat(self.source[0])
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (self._source_stat.st_dev, self._source_stat.st_ino)

    def checked_intact(self) -> bool:
        """Wait for the background check of the mapped file, if one runs; whether the graph passed it."""
        if self.verifier is not None:
            self.verifier.join()
        return not self.damaged

    def mapped_bytes(self) -> int | None:
        """The size of the file the graph is mapped from (None: not mapped, or its file is not known)."""
        return self._source_stat.st_size if self.viewed and self.source is not None else None

    def is_file(self, path: Path) -> bool:
        """Whether the graph is still the unchanged map of the file named ``path``."""
        return self.viewed and self.source is not None and self.source[0] == Path(path) and self._still_named()

    def save(self, path: os.PathLike) -> int | None:
        """Write the graph to ``path``; return its CRC-32 when known without reading it back.

        A graph still mapped from a file it has not changed since is that file's bytes:
        ``path`` becomes a second name for it (a 5 GB graph at 10M rows costs no write),
        unless that file's name now belongs to another file (saved by another process).
        """
        if self.viewed and self.source is not None and self._still_named():
            try:
                os.link(self.source[0], path)
                return self.source[1]
            except OSError:
                pass  # no hard links here, or the file is gone: write it out
        self._raw.save(str(path))
        return None

    @classmethod
    def open(cls, path: os.PathLike, dimensions: int, distance: str, spec: IndexSpec, *, view: bool = True) -> HnswIndex:
        """Map a saved graph without reading it (``view=False``: read it into RAM, where it can change);
        ValueError if it was built with other settings."""
        raw = _usearch().Index.restore(str(path), view=view)
        if raw is None:
            raise ValueError(f"{path} is not a usearch index")
        expected = cls.settings(dimensions, distance, spec)
        if raw.ndim != expected["ndim"] or raw.connectivity != spec.M or str(raw.dtype).lower().split(".")[-1] != expected["dtype"]:
            raise ValueError(f"{path} was built with other settings ({raw.ndim} dims, M={raw.connectivity}, {raw.dtype})")
        raw.expansion_search = spec.ef_search
        return cls(dimensions, distance, spec, _raw=raw, viewed=view)


def best_rows(queries: np.ndarray, candidates: np.ndarray, vectors: np.ndarray, distance: str, k: int) -> list[np.ndarray]:
    """The ``k`` rows of each query's ``candidates`` with the best exact score, best first.

    Ranked in float32 (the caller re-scores the ``k`` kept in float64), unless a
    huge component overflows it.
    """
    out = []
    for query, rows in zip(queries, candidates):
        picked = vectors[rows]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if distance == "euclidean":
                diff = picked - query
                scores = -np.einsum("ij,ij->i", diff, diff)
            else:
                scores = picked @ query
                if distance == "cosine":
                    norms = np.sqrt(np.einsum("ij,ij->i", picked, picked))
                    scores = np.divide(scores, norms, out=np.zeros_like(scores), where=norms > 0)
                    scores[np.isinf(norms)] = np.nan  # an overflowed norm gave 0: score those rows exactly
        if not np.isfinite(scores).all():
            scores = exact_scores(query, picked, distance)
        out.append(rows[np.argsort(-scores, kind="stable")[:k]])
    return out

