"""An optional approximate nearest-neighbour index (HNSW, via hnswlib) for the memory and local backends.

``pip install 'vecbook[ann]'``. The index maps integer *labels* to vectors; the
NodeTable owns the mapping from labels to rows. It is a cache: searches that
use it are approximate (the final scores are still recomputed exactly), filtered
searches never use it, and the local backend may always rebuild it from the data.

hnswlib was chosen by measurement (``bench/bench_ann_libs.py``): at equal
recall it answered single queries fastest and built faster than usearch (f32)
and faiss' HNSW, and unlike faiss' HNSW it deletes and replaces elements in place.

A saved index is three files beside a snapshot: ``<prefix>.hnsw`` (hnswlib's own
format), ``<prefix>.labels.npy`` (the label of each table row) and
``<prefix>.ann.json`` (the generation and log offset it reflects, the row count,
parameters and CRC-32s of the other two). :func:`load_index` returns ``None``
unless everything matches, and the caller rebuilds the index.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import MissingDependencyError, ValidationError

__all__ = ["IndexSpec", "HnswIndex", "make_spec", "save_index", "read_checkpoint", "load_index", "index_files"]

log = logging.getLogger("vecbook.ann")

_SPACES = {"cosine": "cosine", "dot": "ip", "euclidean": "l2"}
_KINDS = ("hnsw",)


def _hnswlib() -> Any:
    try:
        import hnswlib
    except ImportError as exc:
        raise MissingDependencyError("hnswlib", "ann", feature="index='hnsw'") from exc
    return hnswlib


@dataclass(frozen=True)
class IndexSpec:
    """How to build an index. ``ef_search`` is raised to ``2 * top_k`` when a search asks for more.

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


def make_spec(index: Any, params: dict | None = None) -> IndexSpec | None:
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
    unknown = set(params) - {"M", "ef_construction", "ef_search", "threads", "exact_below"}
    if unknown:
        raise ValidationError(f"unknown index_params: {', '.join(sorted(unknown))}")
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key in ("threads", "exact_below") else 2):
            raise ValidationError(f"index_params[{key!r}] must be a positive integer, got {value!r}")
    _hnswlib()  # fail now, not at the first insert
    return IndexSpec(kind=index, **params)


class HnswIndex:
    """An HNSW graph over integer labels: add (or replace), remove, search, save, load.

    Labels are never reused: a new vector gets a new label, and the slot of a
    removed one is recycled by hnswlib (``replace_deleted``) without re-labelling.
    """

    def __init__(self, dimensions: int, distance: str, spec: IndexSpec, *, capacity: int = 1024, _raw: Any = None):
        self.dimensions, self.distance, self.spec = dimensions, distance, spec
        self._threads = spec.threads or os.cpu_count() or 1
        if _raw is None:
            _raw = _hnswlib().Index(space=_SPACES[distance], dim=dimensions)
            _raw.init_index(max_elements=max(capacity, 16), M=spec.M, ef_construction=spec.ef_construction, allow_replace_deleted=True)
        self._raw = _raw

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert new labels, or replace the vectors of existing live ones."""
        if not len(labels):
            return
        needed = self._raw.element_count + len(labels)
        if needed > self._raw.max_elements:
            self._raw.resize_index(max(needed, self._raw.max_elements + self._raw.max_elements // 2))
        threads = self._threads if len(labels) >= 256 else 1
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._raw.add_items(vectors, np.asarray(labels, dtype=np.int64), num_threads=threads, replace_deleted=True)

    def remove(self, labels: np.ndarray) -> None:
        for label in labels:
            self._raw.mark_deleted(int(label))

    def search(self, queries: np.ndarray, k: int) -> np.ndarray | None:
        """Labels of the ``k`` nearest live elements per query (q × k), or None if it cannot answer.

        ``k`` must not exceed the number of live elements.
        """
        if k <= 0:
            return None
        self._raw.set_ef(max(self.spec.ef_search, 2 * k))
        try:
            labels, _ = self._raw.knn_query(queries, k=k, num_threads=1 if len(queries) == 1 else self._threads)
        except RuntimeError:  # fewer than k reachable (after many deletions): the caller goes exact
            return None
        return labels.astype(np.int64)

    @property
    def nbytes(self) -> int:
        """Approximate RAM held by the graph and its copy of the vectors."""
        per_element = 4 * self.dimensions + 4 * (2 * self.spec.M + 1) + 8 + 8
        return self._raw.max_elements * per_element

    def save(self, path: Path) -> None:
        self._raw.save_index(str(path))

    @classmethod
    def load(cls, path: Path, dimensions: int, distance: str, spec: IndexSpec) -> HnswIndex:
        raw = _hnswlib().Index(space=_SPACES[distance], dim=dimensions)
        raw.load_index(str(path), allow_replace_deleted=True)
        return cls(dimensions, distance, spec, _raw=raw)


# ---- persistence beside a snapshot ---------------------------------------------------


def index_files(prefix: Path) -> list[Path]:
    return [Path(f"{prefix}{suffix}") for suffix in (".hnsw", ".labels.npy", ".ann.json")]


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def save_index(prefix: Path, index: HnswIndex, labels: np.ndarray, next_label: int, *, generation: int, log_offset: int) -> bool:
    """Save the index as it is after applying snapshot ``generation`` and its log up to ``log_offset``.

    ``labels[r]`` is the label of table row ``r`` at that point. Files are
    written under temporary names and renamed, the sidecar last; best effort
    (the index is a cache), so failures are logged, not raised.
    """
    paths = index_files(prefix)
    tmps = [p.with_name(p.name + ".tmp") for p in paths]
    try:
        paths[2].unlink(missing_ok=True)  # no sidecar may vouch for half-replaced files
        index.save(tmps[0])
        with open(tmps[1], "wb") as f:
            np.save(f, np.ascontiguousarray(labels, dtype=np.int64), allow_pickle=False)
        meta = {
            "generation": generation,
            "log_offset": int(log_offset),
            "rows": int(len(labels)),
            "next_label": int(next_label),
            "dimensions": index.dimensions,
            "distance": index.distance,
            "spec": asdict(index.spec),
            "crc_graph": _crc(tmps[0]),
            "crc_labels": _crc(tmps[1]),
        }
        tmps[2].write_text(json.dumps(meta))
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
        return True
    except (OSError, RuntimeError) as exc:
        log.warning("could not save the ANN index beside %s (it will be rebuilt on open): %s", prefix, exc)
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        return False


def read_checkpoint(prefix: Path, generation: int, distance: str, spec: IndexSpec) -> dict | None:
    """The sidecar of a saved index, if it was made for this generation and these settings."""
    try:
        meta = json.loads(index_files(prefix)[2].read_text())
    except (OSError, ValueError):
        return None
    expected = {"generation": generation, "distance": distance}
    if any(meta.get(k) != v for k, v in expected.items()) or meta.get("spec", {}).get("M") != spec.M:
        return None
    return meta


def load_index(prefix: Path, meta: dict, rows: int, dimensions: int | None, spec: IndexSpec) -> tuple[HnswIndex, np.ndarray, int] | None:
    """(index, label of each row, next free label) from files vouched for by ``meta``, or None if
    they do not fit a table of ``rows`` rows of ``dimensions`` or are damaged."""
    graph, label_file, _ = index_files(prefix)
    try:
        if meta["rows"] != rows or meta["dimensions"] != dimensions:
            return None
        if _crc(label_file) != meta["crc_labels"] or _crc(graph) != meta["crc_graph"]:
            log.warning("ANN index beside %s fails its checksum; rebuilding it", prefix)
            return None
        labels = np.load(label_file, allow_pickle=False)
        next_label = int(meta["next_label"])
        if labels.shape != (rows,) or (rows and (labels.min() < 0 or labels.max() >= next_label)):
            return None
        return HnswIndex.load(graph, meta["dimensions"], meta["distance"], spec), labels, next_label
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        log.warning("cannot load the ANN index beside %s (%s); rebuilding it", prefix, exc)
        return None
