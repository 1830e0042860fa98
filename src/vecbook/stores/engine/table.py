"""NodeTable: one workspace held in RAM as a contiguous float32 matrix plus row lists.

Shared by the ``memory`` and ``local`` backends. Rows keep insertion order;
an upsert of a known id rewrites its row in place, unless the row is one of the
first ``frozen_rows`` (held by a published snapshot: see ``local/compaction.py``),
which are never changed in place: the row dies and the node is appended. A delete
leaves a dead row that later compaction removes. Filter columns are built lazily per field; a
write records the rows it changed and the columns catch up with just those rows
when next used (a delete needs nothing: dead rows are masked out). Not
thread-safe: callers hold a lock.

With an ``index`` spec (see ``ann.py``) the table also keeps an approximate
index, kept in step with every write, that answers unfiltered searches. Index labels
are never reused and survive compaction (``_labels`` maps rows to labels, see
``table_index.py``), so compaction never touches the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress, count, repeat
from operator import is_
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import _big_arrays
from ...columns import COLUMNS, NodeColumns
from ...errors import DimensionMismatchError
from ...filters import Column, FilterNode, Path, evaluate
from ...node import VectorNode, trusted_node
from .batch import NodeBatch
from .json_copy import copy_jsons
from .matrix import MatrixStorage, RamMatrix
from .row_lists import RowLists, RowSource, is_prefix, rows_by_id, squared_norms
from .scoring import SAFE_SQ_NORM, fast_scores
from .table_index import TableIndex, as_run

if TYPE_CHECKING:
    from .ann import HnswIndex, IndexSpec


__all__ = ["NodeTable", "RowSource", "squared_norms"]

_MIN_CAPACITY = 1024


UNCHANGED = 1 << 62  # changed_floor of a table none of whose rows changed in place


class NodeTable(TableIndex, RowLists):
    def __init__(
        self, dimensions: int | None = None, index: IndexSpec | None = None, distance: str = "cosine", storage: MatrixStorage | None = None
    ):
        self.dimensions = dimensions
        self.storage = storage if storage is not None else RamMatrix()  # where the matrix lives (see matrix.py)
        self.index_spec, self.distance = index, distance
        self._labels = np.zeros(0, dtype=np.int64)  # row -> index label
        self._reset_index()  # no index yet (self.index: HnswIndex | None; see table_index.py)
        self._lazy: RowSource | None = None  # rows of a snapshot not decoded yet (see load_rows)
        self._pending = self._lazy_ids = None  # see RowLists
        self.ids: list[str | None] = []
        self.contents: list[str | None] = []
        self.metadatas: list[dict[str, Any] | None] = []
        self._row_of: dict[str, int] | None = {}
        self._n = 0  # rows used, dead ones included
        self._vectors = np.zeros((0, dimensions or 0), dtype=np.float32)
        self._sq_norms = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._dead = 0
        self._columns: dict[Path, Column] = {}
        self._stale_rows: list[np.ndarray] = []  # rows written since the columns were built
        self._inv_norms: np.ndarray | None = None  # 1/‖row‖ in float32 (0 for zero rows), built on demand
        self._max_sq = 0.0  # the largest squared norm ever stored (never lowered): rules out float32 overflow
        self.layout = getattr(self, "layout", -1) + 1  # changes whenever rows are renumbered
        self.version = getattr(self, "version", -1) + 1  # changes on every write (keyword indexes follow it)
        # The lowest row rewritten in place or renumbered since the last take_changed_floor() (appends and
        # deletes do not count: a deleted row stays in a snapshot as a hole): a snapshot of the first rows
        # is still a snapshot of them if this is above them.
        self.changed_floor = UNCHANGED
        # Rows never changed in place (a published snapshot holds them, so the next one may extend its
        # files rather than write them again): an upsert of one of their ids moves the node to a new row.
        self.frozen_rows = 0

    def __len__(self) -> int:
        return self._n - self._dead

    @property
    def n_rows(self) -> int:
        return self._n

    def load_rows(self, vectors: np.ndarray, rows: RowSource, sq_norms: np.ndarray | None = None) -> None:
        """Fill an empty table with a snapshot's rows without decoding them.

        ``vectors`` (n × d, writable: e.g. a copy-on-write map of a file) becomes the
        matrix as it is; ``rows`` gives (id, content, metadata) of a row on demand and
        every row at once when the row lists are first used. Ids must be unique.
        ``sq_norms`` (float64, one per row) saves computing them if they are known.
        """
        n = len(rows)
        if sq_norms is None or len(sq_norms) != n:
            sq_norms = squared_norms(vectors) if n else np.zeros(0)
        self.clear()
        self.dimensions = vectors.shape[1] if n else self.dimensions
        self._vectors, self._sq_norms, self._alive = vectors, sq_norms, np.ones(n, dtype=bool)
        self._max_sq = float(sq_norms.max()) if n else 0.0
        self._n, self._lazy = n, rows

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows at once (before replaying many writes: one copy, not one per write)."""
        if self.dimensions is not None:
            grown = self._grown(rows, self.dimensions)
            if grown is not None:
                self._vectors, self._sq_norms, self._alive = grown

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
        """Insert or replace the rows of ``batch``.

        Exception-safe: everything that allocates (new rows, norms) is built before the
        first change, so an error (``MemoryError``) leaves the table as it was. Only a
        failure of the approximate index, updated last, drops the index (searches stay
        exact) and is raised.
        """
        if not len(batch):
            return
        self.check(batch)
        if not self._n:
            self._adopt(batch)
            return
        rows, new_ids, moved = self._rows_for(batch.ids)
        first_new_row = self.n_rows
        in_place = rows[rows < first_new_row]
        floor = int(in_place.min()) if len(in_place) else UNCHANGED
        dims = self.dimensions if self.dimensions is not None else batch.dimensions
        grown = self._grown(first_new_row + len(new_ids), dims)
        sq_norms = squared_norms(batch.vectors)
        inv_inside = None
        if self._inv_norms is not None:
            inside = rows[rows < len(self._inv_norms)]
            inv_inside = (inside, _inverse_norms(sq_norms[rows < len(self._inv_norms)]))
        # From here on nothing allocates more than a few list slots.
        if grown is not None:
            self._vectors, self._sq_norms, self._alive = grown
        self.dimensions = dims
        self.changed_floor = min(self.changed_floor, floor)
        self._kill_rows(moved)  # before their ids are appended again
        self._n += len(new_ids)
        if len(new_ids) == len(rows):  # appended in order (a bulk load): slices, no per-row work
            self.append_rows(new_ids, batch.contents, batch.metadatas)
            where: slice | np.ndarray = slice(first_new_row, self._n)
            self.storage.put(self._vectors, first_new_row, batch.vectors)
        else:
            self.append_rows(new_ids, [None] * len(new_ids), [None] * len(new_ids))
            self.set_rows(rows.tolist(), batch.contents, batch.metadatas)
            where = rows
            self._vectors[where] = batch.vectors
        self._sq_norms[where] = sq_norms
        self._max_sq = max(self._max_sq, float(sq_norms.max()))
        self._alive[where] = True
        self.version += 1
        self._columns_changed(rows)
        if inv_inside is not None:
            self._inv_norms[inv_inside[0]] = inv_inside[1]
        if self.index_spec is not None:
            try:
                self._index_add(rows, first_new_row, moved)
            except BaseException:
                self.index = None  # never an index that disagrees with the rows; exact search instead
                raise
        self._compact_if_mostly_dead()

    def _rows_for(self, ids: list[str]) -> tuple[np.ndarray, dict[str, int], list[int]]:
        """The row of each id (existing, or appended in order), the new ids with their rows, and the
        frozen rows whose ids move to new rows (see ``frozen_rows``); changes nothing."""
        found = self.find_rows(ids)
        moved = sorted({row for row in found if row is not None and row < self.frozen_rows})
        if moved:
            found = [None if row is not None and row < self.frozen_rows else row for row in found]
        missing = list(compress(ids, map(is_, found, repeat(None))))
        new_ids = dict(zip(dict.fromkeys(missing), count(self.n_rows)))  # in order of first appearance
        if len(new_ids) == len(ids):  # every id new (and none twice): rows appended in order
            return np.arange(self.n_rows, self.n_rows + len(ids), dtype=np.int64), new_ids, moved
        rows = [new_ids[node_id] if row is None else row for node_id, row in zip(ids, found)]
        return np.array(rows, dtype=np.int64), new_ids, moved

    def _adopt(self, batch: NodeBatch) -> None:
        """Bulk load into an empty table: no per-row Python work, one copy of the vectors at most.

        Builds every array and list first, then assigns them: an error leaves the table empty as before.
        """
        n = len(batch)
        dims = batch.dimensions
        ids, contents, metadatas = list(batch.ids), list(batch.contents), list(batch.metadatas)
        row_of = dict(zip(ids, range(n)))
        matrix = self.storage.adopt(batch.vectors)
        capacity = matrix.shape[0]
        sq_norms = np.zeros(capacity, dtype=np.float64)
        sq_norms[:n] = np.einsum("ij,ij->i", matrix[:n], matrix[:n], dtype=np.float64)
        alive = np.zeros(capacity, dtype=bool)
        alive[:n] = True
        self.dimensions, self.ids, self.contents, self.metadatas, self._row_of = dims, ids, contents, metadatas, row_of
        self._lazy = self._pending = self._lazy_ids = None  # a source of no rows, if any: gone
        self._vectors, self._sq_norms, self._alive = matrix, sq_norms, alive
        self._n = n
        self.layout += 1
        self._max_sq = float(sq_norms[:n].max()) if n else 0.0
        self._dead = 0
        self._columns.clear()
        self._stale_rows.clear()
        self._inv_norms = None
        if self.index_spec is not None:
            self._build_index(np.arange(n))

    def delete(self, ids: Sequence[str]) -> int:
        rows = [row for row in self.find_rows(list(dict.fromkeys(ids))) if row is not None]
        self._kill_rows(rows)
        for row in rows:
            self._index_remove(row)
        self._compact_if_mostly_dead()
        return len(rows)

    def _kill_rows(self, rows: Sequence[int]) -> None:
        """Rows deleted, or left by nodes moved to new rows (their ids no longer found here)."""
        self.clear_rows(rows)
        where = np.array(rows, dtype=np.int64)  # never a tuple: () would pick every row
        self._alive[where] = False  # not a change to a snapshot: it holds the row as a hole (compaction.py)
        self._vectors[where] = 0
        if rows:
            self.version += 1
            self._dead += len(rows)  # columns and norms stay valid: dead rows are masked out

    def _compact_if_mostly_dead(self) -> None:
        if self._dead > max(_MIN_CAPACITY, self.n_rows // 4):
            self.compact()

    def clear(self) -> None:
        self.__init__(self.dimensions, self.index_spec, self.distance, self.storage)

    def compact(self, vectors: np.ndarray | None = None) -> None:
        """Drop dead rows, keeping the order of the live ones (built first, then swapped in: exception-safe).

        The rows before the first dead one keep their numbers: only the rows from it on count
        as changed (``changed_floor``), so a snapshot of the first rows stays one of them.
        ``vectors``: the live rows' vectors, in order, if they were just written elsewhere (a
        snapshot's file, mapped): the matrix becomes that, instead of a copy of its rows.
        """
        if not self._dead:
            return  # nothing to drop: copying every row would renumber none (a close after a bulk load)
        used = self._alive[: self.n_rows]
        first_dead = int(np.argmin(used))
        keep = np.flatnonzero(used)
        vectors = self.storage.taken(self._vectors, keep) if vectors is None else vectors
        sq_norms = self._sq_norms[keep]
        alive = np.ones(len(keep), dtype=bool)
        ids = [self.ids[r] for r in keep]
        contents = [self.contents[r] for r in keep]
        metadatas = [self.metadatas[r] for r in keep]
        row_of = rows_by_id(ids)
        labels = self._labels[keep] if self.index is not None else self._labels[:0]  # no graph: its labels are moot
        self._vectors, self._sq_norms, self._alive = vectors, sq_norms, alive
        self.ids, self.contents, self.metadatas, self._row_of = ids, contents, metadatas, row_of
        self._n = len(keep)
        self._labels = labels
        self.layout += 1
        self.changed_floor = min(self.changed_floor, first_dead)
        self.frozen_rows = min(self.frozen_rows, first_dead)
        self._dead = 0
        self._columns.clear()
        self._stale_rows.clear()
        self._inv_norms = None

    def mark_dead(self, rows: Sequence[int]) -> None:
        """Rows a snapshot holds as holes (deleted before it was written): dead from the open on.

        Called on a table just filled by :meth:`load_rows`, before any index is attached.
        """
        self.clear_rows(rows)
        self._alive[np.array(rows, dtype=np.int64)] = False
        self._dead += len(rows)

    def dead_rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Dead row numbers (in ``[start, stop)``, by default all): the holes a snapshot of the table keeps."""
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        return start + np.flatnonzero(~self._alive[start:stop])

    @property
    def dead_count(self) -> int:
        return self._dead

    def sq_norms(self, rows: np.ndarray) -> np.ndarray:
        """The squared norms (float64) of these rows, a copy."""
        return self._sq_norms[rows]

    def take_changed_floor(self) -> int:
        """The lowest row rewritten in place or renumbered since the last call (``UNCHANGED``: none); restarts the count.

        A deleted row is not counted: a snapshot keeps it as a hole (see ``local/compaction.py``).
        """
        floor, self.changed_floor = self.changed_floor, UNCHANGED
        return floor

    def _grown(self, rows: int, dims: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """New (vectors, sq_norms, alive) arrays with room for ``rows`` rows, or None if they fit (labels follow lazily).

        Builds every array before anything is assigned, so a ``MemoryError`` (or any
        error) leaves the table as it was; the caller assigns them together.
        """
        capacity = self._vectors.shape[0]
        if rows <= capacity and (dims is None or self._vectors.shape[1] == dims):
            return None
        new_capacity = self.storage.capacity(rows, capacity, dims or 0)
        used = self.n_rows
        if self._vectors.shape[1] == (dims or 0):
            vectors = self.storage.grown(self._vectors, used, new_capacity)  # rows appended since are written by the caller
        else:
            vectors = self.storage.empty(new_capacity, dims or 0)
        sq_norms = np.zeros(new_capacity, dtype=np.float64)
        sq_norms[:used] = self._sq_norms[:used]
        alive = np.zeros(new_capacity, dtype=bool)
        alive[:used] = self._alive[:used]
        return vectors, sq_norms, alive

    # ---- reads -----------------------------------------------------------------------

    def live_rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Live row numbers (in ``[start, stop)``, by default all)."""
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        return start + np.flatnonzero(self._alive[start:stop])

    def filter_rows(self, node: FilterNode | None) -> np.ndarray:
        """Live rows matching a filter, in insertion order."""
        if node is None:
            return self.live_rows()
        mask = evaluate(node, self._column, self.n_rows)
        mask &= self._alive[: self.n_rows]
        return np.flatnonzero(mask)

    def _columns_changed(self, rows: np.ndarray) -> None:
        if not self._columns:
            return
        self._stale_rows.append(rows.copy())
        if sum(len(r) for r in self._stale_rows) > max(_MIN_CAPACITY, self.n_rows // 8):
            self._columns.clear()  # so much changed that rebuilding is cheaper
            self._stale_rows.clear()

    def _column(self, path: Path) -> Column:
        if self._stale_rows:
            rows = np.unique(np.concatenate(self._stale_rows))
            self._stale_rows.clear()
            for key, column in list(self._columns.items()):
                self._columns[key] = column.with_rows(self.metadatas, rows)
        column = self._columns.get(path)
        if column is None:
            column = self._columns[path] = Column(self.metadatas, path)
        return column

    def search(self, queries: np.ndarray, top_k: int, node: FilterNode | None, distance: str) -> list[np.ndarray]:
        """Row numbers of the best ``top_k`` live (and matching) rows for each query, best first."""
        n = self.n_rows
        if self.dimensions is not None and queries.shape[1] != self.dimensions:
            raise DimensionMismatchError(self.dimensions, queries.shape[1], "query")
        if n == 0 or top_k <= 0:
            return [np.zeros(0, dtype=np.int64) for _ in range(len(queries))]
        if node is None and self.uses_index(top_k):
            hits = self._index_search(queries, top_k)
            if hits is not None:
                return hits
        return self._exact_search(queries, top_k, None if node is None else self.filter_rows(node), distance)

    def _exact_search(self, queries: np.ndarray, top_k: int, candidates: np.ndarray | None, distance: str) -> list[np.ndarray]:
        """The best ``top_k`` of the live ``candidates`` rows (None: every live row) per query, scored exactly."""
        n = self.n_rows
        if candidates is not None and len(candidates) < n // 2:
            run = as_run(candidates)  # a run of rows (new rows waiting beside an index, say): a view, no copy
            picked, row_map = (run if run is not None else candidates), candidates
        else:
            picked, row_map = slice(0, n), None
        vectors, sq_norms = self._vectors[picked], self._sq_norms[picked]
        inv_norms = self._cosine_weights()[picked] if distance == "cosine" else None
        q_sq = float(np.einsum("ij,ij->i", queries, queries).max()) if len(queries) else 0.0
        safe = self._max_sq < SAFE_SQ_NORM and q_sq < SAFE_SQ_NORM
        scores = fast_scores(queries, vectors, sq_norms, distance, inv_norms, safe=safe)
        if row_map is None and (self._dead or candidates is not None):
            excluded = ~self._alive[:n] if candidates is None else np.ones(n, dtype=bool)
            if candidates is not None:
                excluded[candidates] = False
            scores[:, excluded] = -np.inf
        k_valid = len(candidates) if candidates is not None else len(self)
        k = min(top_k, k_valid)
        out = []
        for row_scores in scores:
            if k == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            m = len(row_scores)
            top = np.argpartition(row_scores, m - k)[m - k :] if k < m else np.arange(m)
            top = top[np.argsort(-row_scores[top], kind="stable")][:k]
            out.append(top if row_map is None else row_map[top])
        return out

    def _cosine_weights(self) -> np.ndarray:
        """1/‖row‖ per row in float32 (0 for zero rows); kept up to date by writes, extended here."""
        have = 0 if self._inv_norms is None else len(self._inv_norms)
        if have < self.n_rows:
            tail = _inverse_norms(self._sq_norms[have : self.n_rows])
            self._inv_norms = tail if self._inv_norms is None else np.concatenate([self._inv_norms, tail])
        return self._inv_norms

    def nodes(self, rows: np.ndarray, workspace_id: str) -> list[VectorNode]:
        """Nodes of many rows: their vectors are rows of one fresh copy."""
        vectors = self._vectors[rows]
        ids, contents, metadatas = self.row_values(rows, ("ids", "contents", "metadatas"))
        return list(map(trusted_node, ids, [workspace_id] * len(ids), contents, copy_jsons(metadatas), vectors))

    def columns(self, rows: np.ndarray, workspace_id: str, which: frozenset[str] = COLUMNS) -> NodeColumns:
        """Rows as NodeColumns of the columns named in ``which`` (copies: the caller may change them)."""
        names = [name for name in ("ids", "contents", "metadatas") if name in which]
        values = dict(zip(names, self.row_values(rows, names)))
        metadatas = values.get("metadatas")
        vectors = None
        if "vectors" in which:
            # a bulk read (a million rows is 1.5 GB at 384-d): into memory of its own, see _big_arrays
            vectors = self._row_copy(rows, _big_arrays.empty((len(rows), self.dimensions), np.float32)) if self.dimensions \
                else np.zeros((len(rows), 0), dtype=np.float32)
        return NodeColumns(workspace_id, values.get("ids"), values.get("contents"), None if metadatas is None else copy_jsons(metadatas), vectors)

    def batch(self, rows: np.ndarray, out: np.ndarray | None = None) -> NodeBatch:
        """Rows as a NodeBatch (metadata shared, not copied: treat as read-only).

        The vectors are copied into ``out`` (``len(rows)`` rows of the table's width) if given.
        """
        return NodeBatch(*self.row_lists(rows), self._row_copy(rows, out))

    def row_lists(self, rows: np.ndarray) -> tuple[list, list, list]:
        """(ids, contents, metadatas) of these rows (metadata shared, not copied: treat as read-only)."""
        ids, contents, metadatas = self.row_values(rows, ("ids", "contents", "metadatas"))
        return ids, contents, metadatas

    def vectors_of(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A C-contiguous copy of these rows' vectors (in ``out`` if given)."""
        return self._row_copy(rows, out)

    _is_prefix = staticmethod(is_prefix)

    def _row_copy(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A C-contiguous copy of these rows of the matrix (a plain slice copy when that is what they are), in ``out`` if given."""
        if out is None:
            return self._vectors[: len(rows)].copy() if self._is_prefix(rows) else self._vectors[rows]
        if self._is_prefix(rows):
            np.copyto(out, self._vectors[: len(rows)])
        else:
            np.take(self._vectors, rows, axis=0, out=out, mode="clip")  # "raise" would copy through a buffer
        return out


def _inverse_norms(sq_norms: np.ndarray) -> np.ndarray:
    norms = np.sqrt(sq_norms)
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
