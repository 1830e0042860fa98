"""The row lists of a NodeTable, decoded from a snapshot when needed, and squared norms of many rows.

A table filled by ``NodeTable.load_rows`` holds a :class:`RowSource` instead of its
lists: searches and counts never need them; a call that reads some rows (a search's
results, a lookup by id, ``read_columns(node_ids=...)``) decodes just those
(:meth:`RowLists.row_values`, :meth:`RowLists.rows_of`), and the first call that needs
most or all of them (a filter, a dump) decodes them all, once. Writes need only the ids
(from the source's id cache): the contents and metadata they write are kept beside the
source's rows (:class:`_Pending`) and laid over them when those are decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["RowLists", "RowSource", "is_prefix", "squared_norms"]


class RowSource(Protocol):
    """Rows decoded on demand (a snapshot's): ``pick(rows, names)`` → those columns of just those rows;
    ``find(ids)`` → the row of each id (-1: none); ``columns()`` → the three lists of every row;
    ``ids()`` → every id if they can be had without decoding the rest (a cache), else None."""

    def __len__(self) -> int: ...

    def pick(self, rows: np.ndarray, names: Sequence[str]) -> list[list]: ...

    def find(self, ids: Sequence[str]) -> np.ndarray: ...

    def columns(self) -> tuple[list, list, list]: ...

    def ids(self) -> list[str] | None: ...


class _Pending:
    """Contents and metadata written while the source's rows are not decoded: rows of the source
    rewritten (``edits``, by row) and rows appended after them (``contents``, ``metadatas``)."""

    def __init__(self, source_rows: int):
        self.source_rows = source_rows
        self.edits: dict[int, tuple[str | None, dict[str, Any] | None]] = {}
        self.contents: list[str | None] = []
        self.metadatas: list[dict[str, Any] | None] = []

    def values(self, row: int, name: str) -> Any:
        if row >= self.source_rows:
            return (self.contents if name == "contents" else self.metadatas)[row - self.source_rows]
        return self.edits[row][name == "metadatas"]


class RowLists:
    """``ids``, ``contents``, ``metadatas`` and ``row_of``, decoded from ``self._lazy`` when first used.

    Writes go through :meth:`append_rows`, :meth:`set_rows` and :meth:`clear_row`, which
    leave the source's rows undecoded when the ids can be had without them.
    """

    _lazy: RowSource | None = None
    _pending: _Pending | None = None  # writes since the source was loaded (the ids are then self._ids)

    @property
    def ids(self) -> list[str | None]:
        if self._lazy is not None and self._pending is None:
            self._start_pending()
        return self._ids

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

    @property
    def row_of(self) -> dict[str, int]:
        if self._lazy is not None and self._pending is None:
            ids = self.id_column()  # with an id cache, a lookup decodes only the rows it finds
            if self._lazy is None:  # there was none: every row was decoded
                return self.row_of
            if self._cached_row_of is None or self._cached_row_of[0] is not ids:
                self._cached_row_of = (ids, dict(zip(ids, range(len(ids)))))
            return self._cached_row_of[1]
        if self._row_of is None:  # rows decoded by a call that needed no lookup: built now
            self._row_of = dict(zip(self._ids, range(len(self._ids))))
        return self._row_of

    @row_of.setter
    def row_of(self, value: dict[str, int]) -> None:
        self._row_of = value

    # ---- writes (the ids and row_of are the caller's to change) ------------------------

    def append_rows(self, contents: list, metadatas: list) -> None:
        """Contents and metadata of rows appended after every row."""
        pending = self._writable()
        (self._contents if pending is None else pending.contents).extend(contents)
        (self._metadatas if pending is None else pending.metadatas).extend(metadatas)

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

    def clear_row(self, row: int) -> None:
        """A deleted row: its id, content and metadata are None."""
        self.ids[row] = None
        self.set_rows([row], (None,), (None,))

    def _writable(self) -> _Pending | None:
        """Where writes go: the pending writes of rows not decoded, or None for the lists themselves."""
        if self._lazy is not None and self._pending is None:
            self._start_pending()
        return self._pending if self._lazy is not None else None

    def _start_pending(self) -> None:
        """Own the ids (read from the source's id cache) so that writes need no decoding; without an id cache, decode."""
        ids = self.id_column()
        if self._lazy is None:  # no id cache: every row was decoded
            return
        known = self._cached_row_of
        self._row_of = known[1] if known is not None and known[0] is ids else None
        self._ids, self._pending = list(ids), _Pending(len(ids))
        self._cached_row_of = None

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
            column = self.id_column() if name == "ids" else getattr(self, name)  # ids alone need no decoding
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
        wanted = [name for name in names if name != "ids"]
        written = np.fromiter((r >= pending.source_rows or r in pending.edits for r in rows.tolist()), dtype=bool, count=len(rows))
        from_source = source.pick(rows[~written], wanted) if wanted and not written.all() else [[] for _ in wanted]
        out = {"ids": [self._ids[r] for r in rows.tolist()]}
        for name, values in zip(wanted, from_source):
            it = iter(values)
            out[name] = [pending.values(r, name) if w else next(it) for r, w in zip(rows.tolist(), written.tolist())]
        return [out[name] for name in names]

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """The rows of those of ``ids`` that are here, in that order (unknown ids left out).

        Rows not decoded yet are looked up without decoding the others when at most half of them are asked for."""
        source = self._lazy
        if source is not None and self._pending is None and 2 * len(ids) <= len(source):
            found = source.find(ids)
        else:
            row_of = self.row_of
            found = np.fromiter((row_of.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        return found[found >= 0]

    def id_column(self) -> list[str | None]:
        """``ids``, read from the row source's id cache if the rows are not decoded yet and it has one."""
        source = self._lazy
        if source is not None and self._pending is None:
            if self._lazy_ids is None or self._lazy_ids[0] is not source:
                self._lazy_ids = (source, source.ids())
            if self._lazy_ids[1] is not None:
                return self._lazy_ids[1]
            self._decode_rows()
        return self._ids

    _lazy_ids: tuple[RowSource, list[str] | None] | None = None  # (the source they came from, its ids)

    _cached_row_of: tuple[list[str], dict[str, int]] | None = None  # built from the id cache: (its ids, the dict)

    def _decode_rows(self) -> None:
        ids, contents, metadatas = self._lazy.columns()
        pending = self._pending
        if pending is not None:  # the writes since: the ids are ours already, the rest laid over the source's
            for row, (content, metadata) in pending.edits.items():
                contents[row], metadatas[row] = content, metadata
            contents += pending.contents
            metadatas += pending.metadatas
            self._contents, self._metadatas = contents, metadatas
        else:
            known = self._cached_row_of
            # a dict built from the id cache is the same dict (a caller may hold it): keep it; else built when first used
            row_of = known[1] if known is not None and known[0] == ids else None
            self._ids, self._contents, self._metadatas, self._row_of = ids, contents, metadatas, row_of
        self._cached_row_of = None
        self._lazy = self._lazy_ids = self._pending = None


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
