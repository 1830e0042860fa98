"""The row lists of a NodeTable, decoded from a snapshot when needed, and squared norms of many rows.

A table filled by ``NodeTable.load_rows`` holds a :class:`RowSource` instead of its
lists: searches and counts never need them; a call that reads some rows (a search's
results, a lookup by id, ``read_columns(node_ids=...)``) decodes just those
(:meth:`RowLists.row_values`, :meth:`RowLists.rows_of`), and the first call that needs
most or all of them (a write, a filter, a dump) decodes them all, once.
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


class RowLists:
    """``ids``, ``contents``, ``metadatas`` and ``row_of``, decoded from ``self._lazy`` when first used."""

    _lazy: RowSource | None = None

    @property
    def ids(self) -> list[str | None]:
        if self._lazy is not None:
            self._decode_rows()
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
        if self._lazy is not None:
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

    def row_values(self, rows: np.ndarray, names: Sequence[str]) -> list[list]:
        """Columns ``names`` (of ``"ids"``, ``"contents"``, ``"metadatas"``) of ``rows``, in that order
        (metadata shared: copy before handing out). Rows not decoded yet are decoded just for this
        call when it reads at most half of them; else every row is decoded, once."""
        source = self._lazy
        if source is not None and 2 * len(rows) <= len(source):
            return source.pick(rows, names)
        picked = None if is_prefix(rows) else rows.tolist()
        out = {}
        for name in sorted(names, key="ids".__eq__):  # the ids last: decoded with the others if any is asked for
            column = self.id_column() if name == "ids" else getattr(self, name)  # ids alone need no decoding
            out[name] = column[: len(rows)] if picked is None else [column[r] for r in picked]
        return [out[name] for name in names]

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """The rows of those of ``ids`` that are here, in that order (unknown ids left out).

        Rows not decoded yet are looked up without decoding the others when at most half of them are asked for."""
        source = self._lazy
        if source is not None and 2 * len(ids) <= len(source):
            found = source.find(ids)
        else:
            row_of = self.row_of
            found = np.fromiter((row_of.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        return found[found >= 0]

    def id_column(self) -> list[str | None]:
        """``ids``, read from the row source's id cache if the rows are not decoded yet and it has one."""
        source = self._lazy
        if source is not None:
            if self._lazy_ids is None or self._lazy_ids[0] is not source:
                self._lazy_ids = (source, source.ids())
            if self._lazy_ids[1] is not None:
                return self._lazy_ids[1]
        return self.ids

    _lazy_ids: tuple[RowSource, list[str] | None] | None = None  # (the source they came from, its ids)

    _cached_row_of: tuple[list[str], dict[str, int]] | None = None  # built from the id cache: (its ids, the dict)

    def _decode_rows(self) -> None:
        ids, contents, metadatas = self._lazy.columns()
        known = self._cached_row_of
        # a dict built from the id cache is the same dict (a caller may hold it): keep it; else built when first used
        row_of = known[1] if known is not None and known[0] == ids else None
        self._cached_row_of = None
        self._ids, self._contents, self._metadatas, self._row_of = ids, contents, metadatas, row_of
        self._lazy = self._lazy_ids = None


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
