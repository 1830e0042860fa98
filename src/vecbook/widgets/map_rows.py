"""The map's drawn points and the store's rows: an id's row, and columns read now aligned to the drawn points."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["RowIndex", "read_aligned"]


def read_aligned(store, workspace_id: str, names: list[str], ids: list[str], source_ids: list[str],
                 source_rows: np.ndarray, rows: list[int] | None = None) -> list[list[Any]]:
    """Columns ``names`` (``"contents"``, ``"metadatas"``) of drawn points ``rows`` (all: ``None``), in that
    order, from one ``read_columns``; ``None`` for a point deleted since the map was read.

    ``ids`` are the drawn points' ids; ``source_ids``/``source_rows`` as :func:`.map_sample.load_points`
    gives them: when the store still lists the same ids in the same order, the drawn rows are
    picked by position, with no lookup per id.
    """
    columns = store.read_columns(workspace_id, columns=["ids", *names])
    if columns.ids == source_ids:  # unchanged since load
        where = (source_rows if rows is None else source_rows[np.asarray(rows, dtype=np.int64)]).tolist()
        return [[values[r] for r in where] for values in (getattr(columns, n) for n in names)]
    position = dict(zip(columns.ids, range(len(columns))))
    where = [position.get(ids[r]) for r in (range(len(ids)) if rows is None else rows)]
    return [[None if r is None else values[r] for r in where] for values in (getattr(columns, n) for n in names)]


class RowIndex(Mapping):
    """Row of an id among the map's ids (sorted): a binary search, so nothing is built per point."""

    def __init__(self, ids: list[str]):
        self._ids = ids

    def __getitem__(self, node_id: str) -> int:
        row = bisect.bisect_left(self._ids, node_id) if isinstance(node_id, str) else len(self._ids)
        if row < len(self._ids) and self._ids[row] == node_id:
            return row
        raise KeyError(node_id)

    def __iter__(self):
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
