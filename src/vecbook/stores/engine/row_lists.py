"""The row lists of a NodeTable, decoded from a snapshot on first use, and squared norms of many rows.

A table filled by ``NodeTable.load_rows`` holds a :class:`RowSource` instead of its
lists: searches and counts never need them (a result decodes just its rows), and the
first call that does (a write, a lookup by id, a filter, a dump) decodes them all.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["RowLists", "RowSource", "squared_norms"]


class RowSource(Protocol):
    """Rows decoded on demand (a snapshot's): ``row(r)`` → (id, content, metadata); ``columns()`` → the three lists;
    ``ids()`` → every id if they can be had without decoding the rest (a cache), else None."""

    def __len__(self) -> int: ...

    def row(self, r: int) -> tuple[str, Any, Any]: ...

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
                return self._row_of
            if self._cached_row_of is None or self._cached_row_of[0] is not ids:
                self._cached_row_of = (ids, dict(zip(ids, range(len(ids)))))
            return self._cached_row_of[1]
        return self._row_of

    @row_of.setter
    def row_of(self, value: dict[str, int]) -> None:
        self._row_of = value

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
        # a dict built from the id cache is the same dict (a caller may hold it): keep it
        row_of = known[1] if known is not None and known[0] == ids else dict(zip(ids, range(len(ids))))
        self._cached_row_of = None
        self._ids, self._contents, self._metadatas, self._row_of = ids, contents, metadatas, row_of
        self._lazy = self._lazy_ids = None


def squared_norms(vectors: np.ndarray) -> np.ndarray:
    """Squared norms of many rows, as float64: summed in float32 (4× faster, and they only rank),
    redone in float64 for rows whose float32 sum is not comfortably finite."""
    sq = np.einsum("ij,ij->i", vectors, vectors).astype(np.float64)
    wide = ~(sq < 1e30)
    if wide.any():
        sq[wide] = np.einsum("ij,ij->i", vectors[wide], vectors[wide], dtype=np.float64)
    return sq
