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
beside it in a second, small graph held in RAM (``_side``: the labels whose current
vector the big graph does not hold, ``_unindexed``, with those vectors), and deleted
rows are remembered (``_gone``: their labels, still in the big graph). Each write adds
its own rows to the small graph, at a cost in proportion to the write. A search asks
both graphs, drops the big graph's stale candidates, and keeps the best of the rest by
their exact scores. The waiting rows go into the big graph (a *fold*, which copies it
into RAM) when a write would leave it more stale entries, or more waiting rows, than
:func:`waiting_max`: a bulk load goes into one graph from there on (each of its rows is
added once more at most up to that limit, not all of them twice at close). If the small
graph holds more rows than the big one (a bulk load after opening a small store), the
fold goes the other way: the big graph's current rows go into the small one. A graph in
RAM folds at once. A mapped graph is saved as it is, with the small graph and the lists
beside it (``ann_files.py``): a compaction does not copy it into RAM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .ann import HnswIndex, IndexSpec, Waiting

__all__ = ["WAITING_FLOOR", "WAITING_SHARE", "TableIndex", "as_run", "waiting_max"]

# A share of a mapped graph: at least WAITING_FLOOR, and one for every WAITING_SHARE of its
# rows. Its stale entries (deleted rows, older vectors of rewritten ones) cost each search as
# many spare candidates; the small graph of waiting rows is read whole at each open: a write
# past this many of either folds.
WAITING_FLOOR = 10_000
WAITING_SHARE = 16


def waiting_max(graph_rows: int) -> int:
    """How many stale entries a mapped graph of ``graph_rows`` rows may hold, and rows wait beside it."""
    return max(WAITING_FLOOR, graph_rows // WAITING_SHARE)


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
        self._side: HnswIndex | None = None  # the current vectors of the _unindexed labels
        self._replaced = 0  # _unindexed labels below _graph_below: the graph holds an older vector of each

    def _build_index(self, live: np.ndarray) -> None:
        """A new graph of the ``live`` rows; every row is labelled by its number."""
        from .ann import HnswIndex  # the optional dependency, only when an index is asked for

        n = self.n_rows
        self._reset_index(HnswIndex(self.dimensions, self.distance, self.index_spec, capacity=max(1024, len(live))), n)
        self._room_for_labels()
        self._labels[:n] = np.arange(n)
        self._fold(live)

    def _index_add(self, rows: np.ndarray, first_new_row: int, left: Sequence[int] = ()) -> None:
        """Index ``rows`` (just written): rows from ``first_new_row`` on get new labels; the labels of
        ``left`` (rows their nodes just moved off) are forgotten, as a delete's."""
        if self.index is None:
            return  # dropped after a failure: searches stay exact until the next open rebuilds it
        new = rows >= first_new_row
        self._label_new_rows(rows[new])  # first: a fold looks waiting rows up by their increasing labels
        for row in left:
            self._index_remove(row)
        if self.index is None:
            return  # a fold found the mapped graph damaged and dropped it
        if self.index.viewed:
            labels = self._labels[rows]
            stale = {label for label in labels[~new].tolist() if label < self._graph_below and label not in self._unindexed}
            if self._may_wait(len(stale), int(new.sum()) + len(stale)):  # the others already wait
                self._side_graph().add(labels, self._vectors[as_run(rows) or rows])
                self._unindexed.update(labels.tolist())
                self._replaced += len(stale)
                return
        self._fold(rows)

    def _index_remove(self, row: int) -> None:
        """Forget the label of ``row`` (just deleted)."""
        if self.index is None:
            return
        label = int(self._labels[row])
        if label in self._unindexed:
            self._side.remove(np.array([label]))
            self._unindexed.discard(label)
            self._replaced -= label < self._graph_below
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

    def _may_wait(self, more_stale: int, more_waiting: int = 0) -> bool:
        """Whether changes that make ``more_stale`` more of the graph's entries stale and ``more_waiting``
        more rows wait may wait beside it instead of going into it now: neither count may pass
        :func:`waiting_max`. A bulk load past it goes into one graph from there on, rather than into
        the small one first and into the big one again at close."""
        limit = waiting_max(len(self.index))
        return self.index.viewed and len(self._gone) + self._replaced + more_stale <= limit and len(self._unindexed) + more_waiting <= limit

    def _side_graph(self) -> HnswIndex:
        """The graph of the rows waiting beside the mapped one, made on first use."""
        if self._side is None:
            from .ann import HnswIndex

            self._side = HnswIndex(self.dimensions, self.distance, self.index_spec)
        return self._side

    def _fold(self, rows: np.ndarray | None = None) -> None:
        """Put the waiting rows and ``rows`` into the graph and drop the deleted ones from it, or, if the
        small graph holds more rows than the big one, put the big one's current rows into the small one.

        A mapped graph is copied into RAM for that, once its background check has passed; one
        that failed it is dropped instead (searches go exact, and the next open rebuilds it).
        """
        if self.index.viewed and not self.index.checked_intact():
            self.index = None
            return
        rows = np.zeros(0, dtype=np.int64) if rows is None else rows
        if self._side is not None and len(self._side) > len(self.index) - len(self._gone) - self._replaced:
            # The small graph holds more rows (a bulk load after opening a small store): the big graph's
            # current entries go into it instead, fewer adds than the other way round.
            graph, live = self._side, self.live_rows()
            rows = np.union1d(live[~graph.holding(self._labels[live])], rows)
            self.index = graph
        else:
            if self._unindexed:
                rows = np.union1d(self._waiting_rows(), rows)
            if self._gone:
                self.index.remove(np.array(self._gone, dtype=np.int64))
        run = as_run(rows)  # a run of rows (a bulk load, say): no copy of the vectors
        picked = rows if run is None else run
        self.index.add(self._labels[picked], self._vectors[picked])
        self._unindexed.clear()
        self._side, self._replaced = None, 0
        self._gone.clear()
        self._graph_below = self._next_label

    def fold_at_close(self, max_bytes: int, min_waiting: int) -> None:
        """Put what waits beside a mapped graph into it if :meth:`folds_at_close`."""
        if self.folds_at_close(max_bytes, min_waiting):
            self._fold()

    def folds_at_close(self, max_bytes: int, min_waiting: int) -> bool:
        """Whether a close should put what waits beside the mapped graph into it (and save it whole).

        Yes if at least ``min_waiting`` changes wait beside a graph mapped from a file of at
        most ``max_bytes``: a second graph costs every search more than copying a small graph
        into RAM once. A big one stays mapped (5.3 GB at 10M rows): no more than
        :func:`waiting_max` rows wait beside it (a write past that folds), so the small graph
        read whole at each open stays small.
        """
        if self.index is None or not self.index.viewed:
            return False
        size = self.index.mapped_bytes()
        return len(self._unindexed) + len(self._gone) >= max(1, min_waiting) and size is not None and size <= max_bytes

    def _waiting_rows(self) -> np.ndarray:
        """The rows waiting beside the graph, increasing (labels increase with rows)."""
        labels = np.sort(np.fromiter(self._unindexed, dtype=np.int64, count=len(self._unindexed)))
        return self._rows_of_labels(labels)

    def _rows_of_labels(self, labels: np.ndarray) -> np.ndarray:
        """The live row of each label (-1: none), by binary search in the rows' increasing labels."""
        n = self.n_rows
        if not n:
            return np.full(labels.shape, -1, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self._labels[:n], labels), n - 1)
        return np.where((self._labels[rows] == labels) & self._alive[rows], rows, -1)

    def attach_index(self, spec: IndexSpec, saved: tuple[HnswIndex, np.ndarray, int, Waiting, HnswIndex | None] | None = None) -> None:
        """Start indexing a filled table: adopt ``saved`` = (index, label of each row, next label, what
        waits beside it, the graph of the waiting rows) if it describes exactly these rows, else build
        the index from the live rows. Without a graph of the waiting rows that holds each of them, one
        is built from their rows."""
        self.index_spec = spec
        n = self.n_rows
        if saved is not None and len(saved[1]) == n:
            index, labels, next_label, waiting, side = saved
            self._reset_index(index, next_label)
            self._labels = labels  # rows added later extend it
            self._unindexed, self._gone, self._graph_below = set(waiting.unindexed), list(waiting.gone), waiting.graph_below
            unindexed = np.array(waiting.unindexed, dtype=np.int64)  # sorted
            self._replaced = int(np.searchsorted(unindexed, waiting.graph_below))
            if side is not None and len(side) == len(unindexed) and side.holds(unindexed):
                self._side = side
            elif len(unindexed):
                self._side_graph().add(unindexed, self._vectors[self._rows_of_labels(unindexed)])
            return
        self._reset_index()
        if self.dimensions is not None:
            self._build_index(self.live_rows())

    def index_state(self) -> tuple[HnswIndex, np.ndarray, int, Waiting, HnswIndex | None] | None:
        """(index, label of each row, next label, what waits beside it, the graph of the waiting rows):
        what :meth:`attach_index` takes back.

        A mapped graph is left as it is (its file can be saved under a second name);
        changes wait beside it only while it is mapped.
        """
        from .ann import Waiting

        if self.index is None:
            return None
        waiting = Waiting(tuple(sorted(self._unindexed)), tuple(self._gone), self._graph_below)
        return self.index, self._labels[: self.n_rows].copy(), self._next_label, waiting, self._side

    def uses_index(self, top_k: int) -> bool:
        """Whether an unfiltered search for ``top_k`` goes to the approximate index."""
        return self.index is not None and top_k < len(self) and len(self) >= self.index_spec.exact_below

    def _index_search(self, queries: np.ndarray, top_k: int) -> list[np.ndarray] | None:
        """The best ``top_k`` rows per query from the graph and the graph of the rows waiting beside it; None: go exact."""
        k = min(top_k, len(self))
        waiting = len(self._unindexed) + len(self._gone)
        labels = self.index.search(queries, k, spare=len(self._gone) + self._replaced)
        if labels is None:
            return None
        rows = self._rows_of_labels(labels)
        if self._unindexed:
            rows[self._side.holding(labels)] = -1  # the big graph holds an older vector
        if not waiting and rows.shape[1] == k:
            return None if (rows < 0).any() else list(rows)  # a float32 graph in step with the table: its order is exact
        beside = rows[:, :0]
        if self._unindexed:
            side_labels = self._side.search(queries, min(k, len(self._side)))
            if side_labels is None:
                return None
            beside = self._rows_of_labels(side_labels)
        candidates = [np.concatenate([found[found >= 0], extra[extra >= 0]]) for found, extra in zip(rows, beside)]
        if min(map(len, candidates)) < k:  # too few left (many deleted near a query): stay exact
            return None
        from .ann import best_rows

        return best_rows(queries, candidates, self._vectors, self.distance, k)
