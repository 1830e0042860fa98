"""The NodeTable's approximate index: label bookkeeping, writes, attaching a saved graph, searching it.

A mixin of :class:`~vecbook.stores.engine.table.NodeTable` (which owns the arrays it
uses): index labels are never reused and survive compaction (``_labels`` maps rows
to labels), so compaction never touches the index. A row's label is given when the row
is appended, so labels increase with the rows, and compaction keeps their order: a
label's row is found by binary search (:meth:`TableIndex._rows_of_labels`), and no
label -> row array is built or kept (80 MB at 10M rows).

**Rows waiting beside the graph.** A graph opened from a file is a read-only map, and
usearch changes only a graph held in RAM: the first change would copy the whole graph
(15 s for the 5 GB graph of 10M nodes). So while the graph is a map, written rows wait
beside it (``_unindexed``: labels whose current vector the graph does not hold) and
deleted ones are remembered (``_gone``: their labels, still in the graph). A search asks
the graph for a few spare candidates, drops the stale ones, and adds the best of the
waiting rows, scored exactly. They go into the graph (a *fold*) once more than
``UNINDEXED_MAX`` wait; a graph in RAM folds at once. A mapped graph is saved as it is,
with what waits beside it (``ann_files.py``): a compaction does not copy it into RAM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .ann import HnswIndex, IndexSpec, Waiting

__all__ = ["UNINDEXED_MAX", "TableIndex", "as_run"]

# Rows that may wait beside a mapped graph: an exact product over them costs about a
# millisecond per query (like the ``exact_below`` of a whole workspace).
UNINDEXED_MAX = 10_000


def as_run(rows: np.ndarray) -> slice | None:
    """``rows`` as a slice if they are consecutive and increasing, else None."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and (len(rows) == 1 or (np.diff(rows) == 1).all()):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return None


class TableIndex:
    def _reset_index(self, index: HnswIndex | None = None, next_label: int = 0) -> None:
        self.index, self._next_label = index, next_label
        self._unindexed: set[int] = set()  # labels whose row's current vector is not in the graph
        self._gone: list[int] = []  # labels of deleted rows the graph still holds
        self._graph_below = next_label  # labels from here on were given since the graph last changed: not in it
        self._beside: tuple[int, np.ndarray, np.ndarray] | None = None  # see _waiting_rows

    def _build_index(self, live: np.ndarray) -> None:
        """A new graph of the ``live`` rows; every row is labelled by its number."""
        from .ann import HnswIndex  # the optional dependency, only when an index is asked for

        n = self.n_rows
        self._reset_index(HnswIndex(self.dimensions, self.distance, self.index_spec, capacity=max(1024, len(live))), n)
        self._room_for_labels()
        self._labels[:n] = np.arange(n)
        self._fold(live)

    def _index_add(self, rows: np.ndarray, first_new_row: int) -> None:
        """Index ``rows`` (just written): rows from ``first_new_row`` on get new labels."""
        if self.index is None:
            return  # dropped after a failure: searches stay exact until the next open rebuilds it
        self._label_new_rows(rows[rows >= first_new_row])
        if self._may_wait(len(rows)):
            self._unindexed.update(self._labels[rows].tolist())
            self._beside = None
        else:
            self._fold(rows)

    def _index_remove(self, row: int) -> None:
        """Forget the label of ``row`` (just deleted)."""
        if self.index is None:
            return
        label = int(self._labels[row])
        if label in self._unindexed:
            self._unindexed.discard(label)
            self._beside = None
        if label < self._graph_below:
            self._gone.append(label)
        if not self._may_wait(0):
            self._fold()

    def _label_new_rows(self, new_rows: np.ndarray) -> None:
        if not len(new_rows):
            return
        self._room_for_labels()
        self._labels[new_rows] = np.arange(self._next_label, self._next_label + len(new_rows), dtype=np.int64)
        self._next_label += len(new_rows)

    def _room_for_labels(self) -> None:
        """Make ``_labels`` as long as the matrix: the one place it grows (it follows the matrix's capacity).

        A saved graph's labels stay the file's copy-on-write map until rows are added after them.
        """
        missing = self._vectors.shape[0] - len(self._labels)
        if missing > 0:
            self._labels = np.concatenate([self._labels, np.zeros(missing, dtype=np.int64)])

    def _may_wait(self, more: int) -> bool:
        """Whether ``more`` changes may wait beside the graph instead of going into it now."""
        return self.index.viewed and len(self._unindexed) + len(self._gone) + more <= UNINDEXED_MAX

    def _fold(self, rows: np.ndarray | None = None) -> None:
        """Put the waiting rows and ``rows`` into the graph and drop the deleted ones from it.

        A mapped graph is copied into RAM for that, once its background check has passed; one
        that failed it is dropped instead (searches go exact, and the next open rebuilds it).
        """
        if self.index.viewed and not self.index.checked_intact():
            self.index = None
            return
        rows = np.zeros(0, dtype=np.int64) if rows is None else rows
        if self._unindexed:
            rows = np.union1d(self._waiting_rows()[1], rows)
        if self._gone:
            self.index.remove(np.array(self._gone, dtype=np.int64))
        run = as_run(rows)  # a run of rows (a bulk load, say): no copy of the vectors
        picked = rows if run is None else run
        self.index.add(self._labels[picked], self._vectors[picked])
        self._unindexed.clear()
        self._beside = None
        self._gone.clear()
        self._graph_below = self._next_label

    def fold_small_map(self, max_bytes: int, min_waiting: int) -> None:
        """Put what waits beside a mapped graph into it if :meth:`small_map_waits`.

        Waiting rows cost every search an exact product over them (6,000 beside a 100k
        graph: a p99 of 8-12 ms against ~1 ms) and would wait again after each open;
        copying a small graph into RAM once costs less. A big one stays mapped (5.3 GB
        at 10M rows).
        """
        if self.small_map_waits(max_bytes, min_waiting):
            self._fold()

    def small_map_waits(self, max_bytes: int, min_waiting: int) -> bool:
        """Whether at least ``min_waiting`` changes wait beside a graph mapped from a file of at most ``max_bytes``."""
        if self.index is None or len(self._unindexed) + len(self._gone) < max(1, min_waiting):
            return False
        size = self.index.mapped_bytes()
        return size is not None and size <= max_bytes

    def _waiting_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, rows) of the rows waiting beside the graph, both increasing.

        Kept between searches until the waiting set changes or the rows are renumbered:
        building them per query cost more than the graph's own search (6,000 waiting).
        """
        if self._beside is None or self._beside[0] != self.layout:
            labels = np.sort(np.fromiter(self._unindexed, dtype=np.int64, count=len(self._unindexed)))
            self._beside = (self.layout, labels, self._rows_of_labels(labels))  # labels increase with rows
        return self._beside[1], self._beside[2]

    def _rows_of_labels(self, labels: np.ndarray) -> np.ndarray:
        """The live row of each label (-1: none), by binary search in the rows' increasing labels."""
        n = self.n_rows
        if not n:
            return np.full(labels.shape, -1, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self._labels[:n], labels), n - 1)
        return np.where((self._labels[rows] == labels) & self._alive[rows], rows, -1)

    def attach_index(self, spec: IndexSpec, saved: tuple[HnswIndex, np.ndarray, int, Waiting] | None = None) -> None:
        """Start indexing a filled table: adopt ``saved`` = (index, label of each row, next label, what
        waits beside it) if it describes exactly these rows, else build the index from the live rows."""
        self.index_spec = spec
        n = self.n_rows
        if saved is not None and len(saved[1]) == n:
            index, labels, next_label, waiting = saved
            self._reset_index(index, next_label)
            self._labels = labels  # rows added later extend it
            self._unindexed, self._gone, self._graph_below = set(waiting.unindexed), list(waiting.gone), waiting.graph_below
            self._beside = None
            return
        self._reset_index()
        if self.dimensions is not None:
            self._build_index(self.live_rows())

    def index_state(self) -> tuple[HnswIndex, np.ndarray, int, Waiting] | None:
        """(index, label of each row, next label, what waits beside it): what :meth:`attach_index` takes back.

        A mapped graph is left as it is (its file can be saved under a second name);
        changes wait beside it only while it is mapped.
        """
        from .ann import Waiting

        if self.index is None:
            return None
        waiting = Waiting(tuple(sorted(self._unindexed)), tuple(self._gone), self._graph_below)
        return self.index, self._labels[: self.n_rows].copy(), self._next_label, waiting

    def uses_index(self, top_k: int) -> bool:
        """Whether an unfiltered search for ``top_k`` goes to the approximate index."""
        return self.index is not None and top_k < len(self) and len(self) >= self.index_spec.exact_below

    def _index_search(self, queries: np.ndarray, top_k: int) -> list[np.ndarray] | None:
        """The best ``top_k`` rows per query from the graph and the rows waiting beside it; None: go exact."""
        k = min(top_k, len(self))
        waiting = len(self._unindexed) + len(self._gone)
        labels = self.index.search(queries, k, spare=waiting)
        if labels is None:
            return None
        rows = self._rows_of_labels(labels)
        if self._unindexed:
            waiting_labels, waiting_rows = self._waiting_rows()
            at = np.minimum(np.searchsorted(waiting_labels, labels), len(waiting_labels) - 1)
            rows[waiting_labels[at] == labels] = -1  # the graph holds an older vector
        if not waiting and rows.shape[1] == k:
            return None if (rows < 0).any() else list(rows)  # a float32 graph in step with the table: its order is exact
        beside = self._exact_search(queries, k, waiting_rows, self.distance) if self._unindexed else [rows[:0, 0]] * len(queries)
        candidates = [np.concatenate([found[found >= 0], extra]) for found, extra in zip(rows, beside)]
        if min(map(len, candidates)) < k:  # too few left (many deleted near a query): stay exact
            return None
        from .ann import best_rows

        return best_rows(queries, candidates, self._vectors, self.distance, k)
