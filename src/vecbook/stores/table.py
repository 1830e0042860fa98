"""NodeTable: one workspace held in RAM as a contiguous float32 matrix plus row lists.

Shared by the ``memory`` and ``local`` backends. Rows keep insertion order;
an upsert of a known id rewrites its row in place; a delete leaves a dead row
that later compaction removes. Filter columns are built lazily per field and
dropped when the table changes. Not thread-safe: callers hold a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError
from ..filters import Column, FilterNode, Path, evaluate
from ..node import VectorNode
from .batch import NodeBatch
from .scoring import fast_scores

__all__ = ["NodeTable"]

_MIN_CAPACITY = 1024


class NodeTable:
    def __init__(self, dimensions: int | None = None):
        self.dimensions = dimensions
        self.ids: list[str | None] = []
        self.contents: list[str | None] = []
        self.metadatas: list[dict[str, Any] | None] = []
        self.row_of: dict[str, int] = {}
        self._vectors = np.zeros((0, dimensions or 0), dtype=np.float32)
        self._sq_norms = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._dead = 0
        self._columns: dict[Path, Column] = {}

    def __len__(self) -> int:
        return len(self.row_of)

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    @property
    def vectors(self) -> np.ndarray:
        """The used rows of the matrix (dead rows included); a view."""
        return self._vectors[: self.n_rows]

    # ---- writes ----------------------------------------------------------------------

    def check(self, batch: NodeBatch) -> None:
        """Raise DimensionMismatchError if ``batch`` cannot go into this table."""
        if len(batch) and self.dimensions is not None and batch.dimensions != self.dimensions:
            raise DimensionMismatchError(self.dimensions, batch.dimensions or 0, f"unique_id={batch.ids[0]!r}")

    def upsert(self, batch: NodeBatch) -> None:
        if not len(batch):
            return
        self.check(batch)
        if not self.ids:
            self._adopt(batch)
            return
        if self.dimensions is None:
            self.dimensions = batch.dimensions
            self._vectors = np.zeros((0, self.dimensions), dtype=np.float32)
        rows = np.empty(len(batch), dtype=np.int64)
        for i, node_id in enumerate(batch.ids):
            row = self.row_of.get(node_id)
            if row is None:
                row = len(self.ids)
                self.row_of[node_id] = row
                self.ids.append(node_id)
                self.contents.append(batch.contents[i])
                self.metadatas.append(batch.metadatas[i])
            else:
                self.contents[row] = batch.contents[i]
                self.metadatas[row] = batch.metadatas[i]
            rows[i] = row
        self._reserve(self.n_rows)
        self._vectors[rows] = batch.vectors
        self._sq_norms[rows] = np.einsum("ij,ij->i", batch.vectors, batch.vectors, dtype=np.float64)
        self._alive[rows] = True
        self._columns.clear()

    def _adopt(self, batch: NodeBatch) -> None:
        """Bulk load into an empty table: no per-row Python work, one copy of the vectors at most."""
        n = len(batch)
        self.dimensions = batch.dimensions
        self.ids, self.contents, self.metadatas = list(batch.ids), list(batch.contents), list(batch.metadatas)
        self.row_of = dict(zip(self.ids, range(n)))
        vectors = batch.vectors
        base = vectors.base if vectors.base is not None and vectors.base.ndim == 2 else None
        if base is not None and vectors.flags.writeable and base.shape[0] > n and vectors.ctypes.data == base.ctypes.data:
            self._vectors = base  # a buffer with spare rows, handed over by the snapshot reader
        else:
            self._vectors = np.empty((max(_MIN_CAPACITY, n + n // 4), self.dimensions), dtype=np.float32)
            self._vectors[:n] = vectors
        capacity = self._vectors.shape[0]
        self._sq_norms = np.zeros(capacity, dtype=np.float64)
        self._sq_norms[:n] = np.einsum("ij,ij->i", self._vectors[:n], self._vectors[:n], dtype=np.float64)
        self._alive = np.zeros(capacity, dtype=bool)
        self._alive[:n] = True
        self._dead = 0
        self._columns.clear()

    def delete(self, ids: Sequence[str]) -> int:
        removed = 0
        for node_id in ids:
            row = self.row_of.pop(node_id, None)
            if row is None:
                continue
            self.ids[row] = self.contents[row] = self.metadatas[row] = None
            self._alive[row] = False
            self._vectors[row] = 0
            removed += 1
        if removed:
            self._dead += removed
            self._columns.clear()
            if self._dead > max(_MIN_CAPACITY, self.n_rows // 4):
                self.compact()
        return removed

    def clear(self) -> None:
        self.__init__(self.dimensions)

    def compact(self) -> None:
        """Drop dead rows, keeping the order of the live ones."""
        keep = np.flatnonzero(self._alive[: self.n_rows])
        self._vectors = np.ascontiguousarray(self._vectors[keep])
        self._sq_norms = self._sq_norms[keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self.ids = [self.ids[r] for r in keep]
        self.contents = [self.contents[r] for r in keep]
        self.metadatas = [self.metadatas[r] for r in keep]
        self.row_of = {node_id: row for row, node_id in enumerate(self.ids)}
        self._dead = 0
        self._columns.clear()

    def _reserve(self, rows: int) -> None:
        capacity = self._vectors.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(_MIN_CAPACITY, rows, capacity + capacity // 2)
        vectors = np.empty((new_capacity, self.dimensions), dtype=np.float32)
        vectors[:capacity] = self._vectors  # rows appended since are written by the caller
        self._vectors = vectors
        self._sq_norms = np.concatenate([self._sq_norms, np.zeros(new_capacity - capacity, dtype=np.float64)])
        self._alive = np.concatenate([self._alive, np.zeros(new_capacity - capacity, dtype=bool)])

    # ---- reads -----------------------------------------------------------------------

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self._alive[: self.n_rows])

    def filter_rows(self, node: FilterNode | None) -> np.ndarray:
        """Live rows matching a filter, in insertion order."""
        if node is None:
            return self.live_rows()
        mask = evaluate(node, self._column, self.n_rows)
        mask &= self._alive[: self.n_rows]
        return np.flatnonzero(mask)

    def _column(self, path: Path) -> Column:
        column = self._columns.get(path)
        if column is None:
            column = self._columns[path] = Column(self.metadatas, path)
        return column

    def search(self, queries: np.ndarray, top_k: int, node: FilterNode | None, distance: str) -> list[np.ndarray]:
        """Row numbers of the best ``top_k`` live (and matching) rows for each query, best first."""
        n = self.n_rows
        if n == 0 or top_k <= 0:
            return [np.zeros(0, dtype=np.int64) for _ in range(len(queries))]
        candidates = None if node is None else self.filter_rows(node)
        if candidates is not None and len(candidates) < n // 2:
            vectors, sq_norms, row_map = self._vectors[candidates], self._sq_norms[candidates], candidates
        else:
            vectors, sq_norms, row_map = self._vectors[:n], self._sq_norms[:n], None
        scores = fast_scores(queries, vectors, sq_norms, distance)
        if row_map is None:
            excluded = ~self._alive[:n] if candidates is None else np.ones(n, dtype=bool)
            if candidates is not None:
                excluded[candidates] = False
            if self._dead or candidates is not None:
                scores[:, excluded] = -np.inf
        k_valid = len(candidates) if candidates is not None else len(self)
        k = min(top_k, k_valid)
        out = []
        for row_scores in scores:
            if k == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            top = np.argpartition(-row_scores, k - 1)[:k] if k < len(row_scores) else np.arange(len(row_scores))
            top = top[np.argsort(-row_scores[top], kind="stable")][:k]
            out.append(top if row_map is None else row_map[top])
        return out

    def node(self, row: int, workspace_id: str, with_vector: bool = True) -> VectorNode:
        return VectorNode.model_construct(
            unique_id=self.ids[row],
            workspace_id=workspace_id,
            content=self.contents[row],
            metadata=_copy_json(self.metadatas[row]),
            vector=self._vectors[row].copy() if with_vector else None,
        )

    def batch(self, rows: np.ndarray) -> NodeBatch:
        """Rows as a NodeBatch (metadata shared, not copied: treat as read-only)."""
        return NodeBatch(
            [self.ids[r] for r in rows],
            [self.contents[r] for r in rows],
            [self.metadatas[r] for r in rows],
            np.ascontiguousarray(self._vectors[rows]),
        )


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value
