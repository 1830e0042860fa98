"""The row lists of a NodeTable, decoded from a snapshot when needed, and squared norms of many rows.

A table filled by ``NodeTable.load_rows`` holds a :class:`RowSource` instead of its
lists: searches and counts never need them; a call that reads some rows (a search's
results, a lookup by id, ``read_columns(node_ids=...)``) decodes just those
(:meth:`RowLists.row_values`, :meth:`RowLists.rows_of`), and the first call that needs
most or all of them (a filter, a dump) decodes them all, once. Writes decode nothing: they
look their ids up in the source (its row index) and keep what they write beside the
source's rows (:class:`_Pending`), laid over them when those are decoded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["RowLists", "RowSource", "is_prefix", "rows_by_id", "squared_norms"]


class RowSource(Protocol):
    """Rows decoded on demand (a snapshot's): ``pick(rows, names)`` → those columns of just those rows;
    ``find(ids, skip)`` → the row of each id not among the rows ``skip`` (-1: none; a deleted row's id
    may be held again by a later row); ``columns()`` → the three lists of every row;
    ``ids()`` → every id if they can be had without decoding the rest (a cache), else None."""

    def __len__(self) -> int: ...

    def pick(self, rows: np.ndarray, names: Sequence[str]) -> list[list]: ...

    def find(self, ids: Sequence[str], skip: Collection[int] = ()) -> np.ndarray: ...

    def columns(self) -> tuple[list, list, list]: ...

    def ids(self) -> list[str] | None: ...


class _Pending:
    """Writes while the source's rows are not decoded: the rows appended after the source's (their
    ``ids``, ``row_of``, ``contents``, ``metadatas``), the source's rows rewritten (``edits``, by row)
    and deleted (``deleted``; also in ``edits``, as (None, None)). ``all_ids``: every id, once a call
    asked for them all, kept up to date from then on."""

    def __init__(self, source_rows: int):
        self.source_rows = source_rows
        self.ids: list[str | None] = []
        self.row_of: dict[str, int] = {}
        self.contents: list[str | None] = []
        self.metadatas: list[dict[str, Any] | None] = []
        self.edits: dict[int, tuple[str | None, dict[str, Any] | None]] = {}
        self.deleted: set[int] = set()
        self.all_ids: list[str | None] | None = None

    def appended(self, row: int, name: str) -> Any:
        return getattr(self, name)[row - self.source_rows]


class RowLists:
    """A table's ids, contents and metadatas (``ids``, ``contents``, ``metadatas``: every row), and
    :meth:`find_rows` (ids -> rows). Decoded from ``self._lazy`` when a call first needs every row.

    Writes go through :meth:`append_rows`, :meth:`set_rows` and :meth:`clear_rows`, which leave
    the source's rows undecoded: a write looks its ids up in the source (``RowSource.find``)
    and keeps what it writes beside the source's rows (:class:`_Pending`).
    """

    _lazy: RowSource | None = None
    _pending: _Pending | None = None
    _lazy_ids: tuple[RowSource, list[str] | None] | None = None  # (the source they came from, its id cache)
    _row_of: dict[str, int] | None = None  # id -> row of decoded rows (None: built when first needed)

    @property
    def ids(self) -> list[str | None]:
        """Every row's id (None: a deleted row); treat as read-only."""
        return self.id_column()

    @ids.setter
    def ids(self, value: list[str | None]) -> None:
        self._ids = value

    @property
    def contents(self) -> list[str | None]:
        if self._lazy is not None:
            self._decode_rows()
        return self._contents

    @contents.setter
    def contents(self, value: list[str | None]) -> None:
        self._contents = value

    @property
    def metadatas(self) -> list[dict[str, Any] | None]:
        if self._lazy is not None:
            self._decode_rows()
        return self._metadatas

    @metadatas.setter
    def metadatas(self, value: list[dict[str, Any] | None]) -> None:
        self._metadatas = value

    def decode_rows(self) -> None:
        """Decode every row of the source now (a small snapshot at open: damage shows there)."""
        if self._lazy is not None:
            self._decode_rows()

    # ---- lookups -----------------------------------------------------------------------

    def find_rows(self, ids: Sequence[str]) -> list[int | None]:
        """The row of each id (None: not here). Rows not decoded are looked up in the source,
        without decoding the others, unless more than half of them are asked for."""
        source, pending = self._lazy, self._pending
        if source is None or 2 * len(ids) > len(source):
            return list(map(self._id_rows().get, ids))  # lookups in C
        found = list(map(pending.row_of.get, ids)) if pending is not None else [None] * len(ids)
        ask = [i for i, row in enumerate(found) if row is None]
        if ask:
            deleted = pending.deleted if pending is not None else ()
            for i, row in zip(ask, source.find([ids[i] for i in ask], deleted).tolist()):
                if row >= 0:
                    found[i] = row
        return found

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """The rows of those of ``ids`` that are here, in that order (unknown ids left out)."""
        return np.array([row for row in self.find_rows(ids) if row is not None], dtype=np.int64)

    def _id_rows(self) -> dict[str, int]:
        """id -> row of every live row (built from every id when first needed)."""
        if self._lazy is not None:
            ids = self.id_column()
            if self._lazy is not None:  # an id cache, with the writes since laid over it
                return rows_by_id(ids)
        if self._row_of is None:
            self._row_of = rows_by_id(self._ids)
        return self._row_of

    # ---- writes ---------------------------------------------------------------------------

    def append_rows(self, new_ids: dict[str, int], contents: list, metadatas: list) -> None:
        """Rows appended after every row: ``new_ids`` maps their ids to their rows, in row order."""
        pending = self._writable()
        if pending is None:
            self._ids.extend(new_ids)
            if self._row_of is not None:
                self._row_of.update(new_ids)
            self._contents.extend(contents)
            self._metadatas.extend(metadatas)
            return
        pending.ids.extend(new_ids)
        pending.row_of.update(new_ids)
        pending.contents.extend(contents)
        pending.metadatas.extend(metadatas)
        if pending.all_ids is not None:
            pending.all_ids.extend(new_ids)

    def set_rows(self, rows: list[int], contents: Sequence, metadatas: Sequence) -> None:
        """Contents and metadata of existing rows (rows appended by :meth:`append_rows` included)."""
        pending = self._writable()
        if pending is None:
            own_contents, own_metadatas = self._contents, self._metadatas
            for row, content, metadata in zip(rows, contents, metadatas):
                own_contents[row] = content
                own_metadatas[row] = metadata
            return
        first_new = pending.source_rows
        for row, content, metadata in zip(rows, contents, metadatas):
            if row < first_new:
                pending.edits[row] = (content, metadata)
            else:
                pending.contents[row - first_new] = content
                pending.metadatas[row - first_new] = metadata

    def clear_rows(self, rows: Sequence[int]) -> None:
        """Deleted rows: their ids no longer found, their ids, contents and metadata None."""
        pending = self._writable()
        if pending is None:
            if self._row_of is not None:
                for row in rows:
                    self._row_of.pop(self._ids[row], None)
            for column in (self._ids, self._contents, self._metadatas):
                for row in rows:
                    column[row] = None
            return
        first_new = pending.source_rows
        in_source = [row for row in rows if row < first_new]
        pending.deleted.update(in_source)
        pending.edits.update(dict.fromkeys(in_source, (None, None)))
        for row in rows:
            if row >= first_new:
                pending.row_of.pop(pending.ids[row - first_new], None)
                pending.ids[row - first_new] = pending.contents[row - first_new] = pending.metadatas[row - first_new] = None
        if pending.all_ids is not None:
            for row in rows:
                pending.all_ids[row] = None

    def _writable(self) -> _Pending | None:
        """Where writes go: the pending writes of rows not decoded, or None for the lists themselves."""
        if self._lazy is None:
            return None
        if self._pending is None:
            self._pending = _Pending(len(self._lazy))
        return self._pending

    # ---- reads ------------------------------------------------------------------------------

    def row_values(self, rows: np.ndarray, names: Sequence[str]) -> list[list]:
        """Columns ``names`` (of ``"ids"``, ``"contents"``, ``"metadatas"``) of ``rows``, in that order
        (metadata shared: copy before handing out). Rows not decoded yet are decoded just for this
        call when it reads at most half of them; else every row is decoded, once."""
        source = self._lazy
        if source is not None and 2 * len(rows) <= len(source):
            return self._picked(source, rows, names)
        picked = None if is_prefix(rows) else rows.tolist()
        run = None
        if picked is not None and picked and picked[-1] - picked[0] + 1 == len(picked) and (rows[1:] > rows[:-1]).all():
            run, picked = (picked[0], picked[-1] + 1), None
        out = {}
        for name in sorted(names, key="ids".__eq__):  # the ids last: decoded with the others if any is asked for
            column = getattr(self, name)  # ids alone need no decoding (an id cache)
            if picked is not None:
                out[name] = [column[r] for r in picked]
            else:
                out[name] = column[run[0] : run[1]] if run else column[: len(rows)]
        return [out[name] for name in names]

    def _picked(self, source: RowSource, rows: np.ndarray, names: Sequence[str]) -> list[list]:
        """``row_values`` of rows not decoded: from the source, with the writes since laid over them."""
        pending = self._pending
        if pending is None:
            return source.pick(rows, names)
        listed = rows.tolist()
        in_source = np.fromiter((r < pending.source_rows and r not in pending.deleted for r in listed), dtype=bool, count=len(rows))
        picked = dict(zip(names, source.pick(rows[in_source], names))) if in_source.any() else {name: [] for name in names}
        out = []
        for name in names:
            it = iter(picked[name])
            if name == "ids":
                out.append([next(it) if kept else pending.appended(r, name) if r >= pending.source_rows else None
                            for r, kept in zip(listed, in_source.tolist())])
                continue
            edited = pending.edits
            column = []
            for r, kept in zip(listed, in_source.tolist()):
                value = next(it) if kept else None
                if r >= pending.source_rows:
                    value = pending.appended(r, name)
                elif r in edited:
                    value = edited[r][name == "metadatas"]
                column.append(value)
            out.append(column)
        return out

    def id_column(self) -> list[str | None]:
        """Every id: with rows not decoded, from the source's id cache (with the writes since laid over
        it) if it has one, else every row is decoded."""
        source = self._lazy
        if source is None:
            return self._ids
        pending = self._pending
        if pending is not None and pending.all_ids is not None:
            return pending.all_ids
        if self._lazy_ids is None or self._lazy_ids[0] is not source:
            self._lazy_ids = (source, source.ids())
        cached = self._lazy_ids[1]
        if cached is None:  # no id cache
            self._decode_rows()
            return self._ids
        if pending is None:
            return cached
        all_ids = list(cached)
        for row in pending.deleted:
            all_ids[row] = None
        all_ids += pending.ids
        pending.all_ids = all_ids
        return all_ids

    def _decode_rows(self) -> None:
        ids, contents, metadatas = self._lazy.columns()
        pending = self._pending
        if pending is not None:  # the writes since, laid over the source's rows
            for row, (content, metadata) in pending.edits.items():
                contents[row], metadatas[row] = content, metadata
            for row in pending.deleted:
                ids[row] = None
            ids += pending.ids
            contents += pending.contents
            metadatas += pending.metadatas
        self._ids, self._contents, self._metadatas, self._row_of = ids, contents, metadatas, None
        self._lazy = self._lazy_ids = self._pending = None


def rows_by_id(ids: list[str | None]) -> dict[str, int]:
    """id -> row of these rows (a deleted row's id is None: left out)."""
    rows = dict(zip(ids, range(len(ids))))  # in C: several times faster than a comprehension
    rows.pop(None, None)  # deleted rows
    return rows


def is_prefix(rows: np.ndarray) -> bool:
    """Whether ``rows`` is 0, 1, ..., len-1 (rows asked by id come in any order: not only the ends are checked)."""
    return len(rows) == 0 or (rows[0] == 0 and rows[-1] == len(rows) - 1 and bool((rows[1:] > rows[:-1]).all()))


def squared_norms(vectors: np.ndarray) -> np.ndarray:
    """Squared norms of many rows, as float64: summed in float32 (4× faster, and they only rank),
    redone in float64 for rows whose float32 sum is not comfortably finite."""
    sq = np.einsum("ij,ij->i", vectors, vectors).astype(np.float64)
    wide = ~(sq < 1e30)
    if wide.any():
        sq[wide] = np.einsum("ij,ij->i", vectors[wide], vectors[wide], dtype=np.float64)
    return sq
