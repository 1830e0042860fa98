"""The NodeTable's approximate index: label bookkeeping, adding rows, attaching a saved graph, searching it.

A mixin of :class:`~vecbook.stores.engine.table.NodeTable` (which owns the arrays it
uses): index labels are never reused and survive compaction (``_labels`` maps rows
to labels, ``_row_of_label`` back), so compaction never touches the index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .ann import HnswIndex, IndexSpec

__all__ = ["TableIndex"]


class TableIndex:
    def _index_add(self, rows: np.ndarray, first_new_row: int) -> None:
        """Put ``rows`` (just written) into the index: rows from ``first_new_row`` on get new labels."""
        if self.index is None:
            from .ann import (
                HnswIndex,  # the optional dependency, only when an index is asked for
            )

            self.index = HnswIndex(self.dimensions, self.distance, self.index_spec, capacity=max(1024, len(rows)))
        new_rows = rows[rows >= first_new_row]
        if len(new_rows):
            if len(self._labels) < self._vectors.shape[0]:
                self._labels = np.concatenate([self._labels, np.zeros(self._vectors.shape[0] - len(self._labels), dtype=np.int64)])
            labels = np.arange(self._next_label, self._next_label + len(new_rows), dtype=np.int64)
            if len(self._row_of_label) < self._next_label + len(new_rows):
                grown = np.full(max(self._next_label + len(new_rows), 2 * len(self._row_of_label)), -1, dtype=np.int64)
                grown[: len(self._row_of_label)] = self._row_of_label
                self._row_of_label = grown
            self._next_label += len(new_rows)
            self._labels[new_rows] = labels
            self._row_of_label[labels] = new_rows
        if len(rows) > 1024 and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
            span = slice(int(rows[0]), int(rows[-1]) + 1)  # a run of rows: no copy of the vectors
            self.index.add(self._labels[span], self._vectors[span])
        else:
            self.index.add(self._labels[rows], self._vectors[rows])

    def attach_index(self, spec: IndexSpec, saved: tuple[HnswIndex, np.ndarray, int] | None = None) -> None:
        """Start indexing a filled table: adopt ``saved`` = (index, label of each row, next label)
        if it describes exactly these rows, else build the index from the live rows."""
        self.index_spec = spec
        n = self.n_rows
        self._labels = np.zeros(self._vectors.shape[0], dtype=np.int64)
        if saved is not None and len(saved[1]) == n:
            self.index, labels, self._next_label = saved
            self._labels[:n] = labels
            self._row_of_label = np.full(max(self._next_label, 1), -1, dtype=np.int64)
            live = self.live_rows()
            self._row_of_label[labels[live]] = live
            return
        self.index, self._next_label, self._row_of_label = None, 0, np.zeros(0, dtype=np.int64)
        if self.dimensions is not None:
            self._labels[:n] = np.arange(n)
            self._next_label = n
            self._row_of_label = np.full(max(n, 1), -1, dtype=np.int64)
            live = self.live_rows()
            self._row_of_label[live] = live
            self._index_add(live, n)  # every label is already assigned: nothing counts as new

    def index_state(self) -> tuple[HnswIndex, np.ndarray, int] | None:
        """(index, label of each row, next label): what :meth:`attach_index` takes back."""
        if self.index is None:
            return None
        return self.index, self._labels[: self.n_rows].copy(), self._next_label

    def uses_index(self, top_k: int) -> bool:
        """Whether an unfiltered search for ``top_k`` goes to the approximate index."""
        return self.index is not None and top_k < len(self) and len(self) >= self.index_spec.exact_below

    def _index_search(self, queries: np.ndarray, top_k: int) -> list[np.ndarray] | None:
        k = min(top_k, len(self))
        labels = self.index.search(queries, k)
        if labels is None:
            return None
        rows = self._row_of_label[labels]
        if (rows < 0).any():  # cannot happen while index and table agree; stay exact if they do not
            return None
        if rows.shape[1] > k:  # a quantized graph's candidates: keep the k best by exact score
            from .ann import best_rows

            return best_rows(queries, rows, self._vectors, self.distance, k)
        return list(rows)
