"""TableStore: the hooks the memory and local backends share, over one NodeTable per workspace."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from ..._aio import to_thread
from ...columns import NodeColumns
from ...filters import FilterNode
from ...node import VectorNode
from ..base import BaseVectorStore
from ..introspection import FieldRange, FieldSummary, MetadataField, ValueCount
from ..keyword.tables import table_keyword_search
from .facets import count_rows, table_fields, table_range, table_summary, table_values
from .table import NodeTable

__all__ = ["TableStore", "TableState"]

T = TypeVar("T")


@dataclass
class TableState:
    table: NodeTable
    lock: threading.RLock = field(default_factory=threading.RLock)


class TableStore(BaseVectorStore):
    """Read hooks over one NodeTable per workspace, shared by the memory and local backends.

    A backend supplies ``_state(ws)`` (raising WorkspaceNotFoundError) and may
    override ``_refresh(ws, state)``, called under the state's lock before every
    read. Every table operation runs in a worker thread, under the state's lock:
    the event loop never waits for a lock or a disk, and an interrupt (which
    Python delivers to the main thread) never lands in the middle of one.
    Filters are evaluated exactly on the table (``_translate`` hands the tree over).
    """

    _index_spec = None  # an ann.IndexSpec when the store was made with index="hnsw"

    def _new_table(self, dimensions: int | None = None) -> NodeTable:
        return NodeTable(dimensions, index=self._index_spec, distance=self.distance)

    def _state(self, ws: str) -> TableState:
        raise NotImplementedError

    def _held_states(self) -> list[TableState]:
        """Every workspace state held in RAM."""
        raise NotImplementedError

    def _after_fork(self) -> None:
        for state in self._held_states():  # a lock held by a parent's thread at the fork stays held here
            state.lock = threading.RLock()

    def _refresh(self, ws: str, state: TableState) -> None:
        return None

    async def _locked(self, ws: str, fn: Callable[[NodeTable], T]) -> T:
        """``fn(table)`` in a worker thread, under the workspace's lock, caught up with the files."""

        def run() -> T:
            state = self._state(ws)
            with state.lock:
                self._refresh(ws, state)
                return fn(state.table)

        return await to_thread(run)

    async def _dimensions(self, ws: str) -> int | None:
        return await self._locked(ws, lambda t: t.dimensions)

    async def _searchable(self, ws: str, queries: np.ndarray) -> bool:
        return True  # NodeTable.search checks the length and emptiness under the lock, in the search's own trip

    async def _count(self, ws: str) -> int:
        return await self._locked(ws, len)

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        return await self._locked(ws, lambda t: t.nodes(t.rows_of(ids), ws))

    async def _search(self, ws: str, queries: np.ndarray, limit: int, native: FilterNode | None) -> list[list[VectorNode]]:
        def search(table: NodeTable) -> list[list[VectorNode]]:
            return [table.nodes(rows, ws) for rows in table.search(queries, limit, native, self.distance)]

        return await self._locked(ws, search)

    async def _keyword(self, ws: str, texts: list[str], limit: int, native: FilterNode | None) -> list[list[tuple[VectorNode, float]]]:
        # the filter is evaluated exactly on the table, as for vector search
        return await self._locked(ws, lambda t: table_keyword_search(t, ws, texts, limit, native))

    async def _columns(self, ws: str, filter: FilterNode | None, limit: int | None, offset: int, columns: frozenset[str]) -> NodeColumns:
        stop = None if limit is None else offset + limit
        return await self._locked(ws, lambda t: t.columns(t.filter_rows(filter)[offset:stop], ws, columns))

    async def _id_columns(self, ws: str, ids: list[str], filter: FilterNode | None, columns: frozenset[str]) -> NodeColumns:
        def read(t: NodeTable) -> NodeColumns:
            rows = t.rows_of(ids)
            if filter is not None:
                rows = rows[np.isin(rows, t.filter_rows(filter))]
            return t.columns(rows, ws, columns)

        return await self._locked(ws, read)

    async def _pages(self, ws: str, page_size: int, native: FilterNode | None) -> AsyncIterator[list[VectorNode]]:
        # A snapshot of the matching ids; nodes deleted meanwhile are skipped.
        ids = await self._locked(ws, lambda t: [t.ids[r] for r in t.filter_rows(native)])
        for start in range(0, len(ids), page_size):
            page = await self._get(ws, ids[start : start + page_size])
            if page:
                yield page

    # ---- metadata introspection (engine/facets.py) ----------------------------------------

    async def _count_where(self, ws: str, native: FilterNode | None) -> int:
        return await self._locked(ws, lambda t: count_rows(t, native))

    async def _matching_ids(self, ws: str, filter: FilterNode | None) -> list[str]:
        return await self._locked(ws, lambda t: [t.ids[r] for r in t.filter_rows(filter).tolist()])

    async def _metadata_fields(self, ws: str, filter: FilterNode | None) -> list[MetadataField]:
        return await self._locked(ws, lambda t: table_fields(t, filter))

    async def _distinct_values(self, ws: str, filter: FilterNode | None, path: tuple, limit: int | None, offset: int) -> list[ValueCount]:
        return await self._locked(ws, lambda t: table_values(t, filter, path, limit, offset))

    async def _field_range(self, ws: str, filter: FilterNode | None, path: tuple) -> FieldRange:
        return await self._locked(ws, lambda t: table_range(t, filter, path))

    async def _describe_metadata(self, ws: str, filter: FilterNode | None, max_values: int) -> list[FieldSummary]:
        return await self._locked(ws, lambda t: table_summary(t, filter, max_values))
