"""TableStore: the read hooks of the memory and local backends, over one NodeTable per workspace."""

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
from .table import NodeTable

__all__ = ["TableStore", "TableState"]

T = TypeVar("T")
INLINE_ROWS = 65_536  # rows x queries of an unfiltered search run without a worker thread


@dataclass
class TableState:
    table: NodeTable
    lock: threading.RLock = field(default_factory=threading.RLock)


class TableStore(BaseVectorStore):
    """Read hooks over one NodeTable per workspace, shared by the memory and local backends.

    A backend supplies ``_state(ws)`` (raising WorkspaceNotFoundError) and may
    override ``_refresh(ws, state)``, called under the state's lock before every
    read. Heavy work runs in a worker thread so async callers never block their loop.
    """

    _runs_eagerly = True  # every hook is plain Python or to_thread: sync calls need no loop hop
    _io_in_thread: bool = False  # True where even light reads touch the disk
    _index_spec = None  # an ann.IndexSpec when the store was made with index="hnsw"

    def _new_table(self, dimensions: int | None = None) -> NodeTable:
        return NodeTable(dimensions, index=self._index_spec, distance=self.distance)

    def _state(self, ws: str) -> TableState:
        raise NotImplementedError

    def _refresh(self, ws: str, state: TableState) -> None:
        return None

    def _loaded_state(self, ws: str) -> TableState | None:
        """The workspace's state if it is already in RAM (never loads it)."""
        return None

    def _quick_refresh(self, ws: str, state: TableState) -> bool:
        """``_refresh`` if it is cheap now, returning True; False leaves it to a worker thread (under the lock)."""
        self._refresh(ws, state)
        return True

    async def _locked(self, ws: str, fn: Callable[[NodeTable], T], heavy: bool = False) -> T:
        def run() -> T:
            state = self._state(ws)
            with state.lock:
                self._refresh(ws, state)
                return fn(state.table)

        if heavy:
            return await to_thread(run)
        if not self._io_in_thread:
            return run()
        # A light read of a workspace already in RAM needs only two stats to catch up: cheaper
        # here than the two thread switches of a worker, unless a writer holds the table.
        done, value = self._try_here(ws, fn)
        return value if done else await to_thread(run)

    def _try_here(self, ws: str, fn: Callable[[NodeTable], T]) -> tuple[bool, T | None]:
        """Run ``fn`` on this thread if the workspace is in RAM, its lock is free and catching up is cheap."""
        state = self._loaded_state(ws)
        if state is None or not state.lock.acquire(blocking=False):
            return False, None
        try:
            if self._quick_refresh(ws, state):
                return True, fn(state.table)
            return False, None
        finally:
            state.lock.release()

    async def _dimensions(self, ws: str) -> int | None:
        return await self._locked(ws, lambda t: t.dimensions)

    async def _count(self, ws: str) -> int:
        return await self._locked(ws, len)

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        return await self._locked(ws, lambda t: t.nodes(np.array([t.row_of[i] for i in ids if i in t.row_of], dtype=np.int64), ws))

    async def _search(self, ws: str, queries: np.ndarray, top_k: int, filter: FilterNode | None) -> list[list[VectorNode]]:
        def search(table: NodeTable) -> list[list[VectorNode]]:
            hits = table.search(queries, top_k, filter, self.distance)
            return [table.nodes(rows, ws) for rows in hits]

        # A small unfiltered search (well under a millisecond) is cheaper than the two thread
        # switches of a worker thread, which cost milliseconds on a busy machine: run it here,
        # unless a writer holds the table (then never block the loop waiting for it).
        state = self._loaded_state(ws)
        small = state is not None and filter is None and (
            state.table.n_rows * len(queries) <= INLINE_ROWS or (len(queries) <= 4 and state.table.uses_index(top_k))
        )
        if small:
            done, hits = self._try_here(ws, search)
            if done:
                return hits
        return await self._locked(ws, search, heavy=True)

    async def _columns(self, ws: str, filter: FilterNode | None, limit: int | None) -> NodeColumns:
        def read(table: NodeTable) -> NodeColumns:
            rows = table.filter_rows(filter)[:limit]
            return table.columns(rows, ws)

        return await self._locked(ws, read, heavy=True)

    async def _pages(self, ws: str, page_size: int, filter: FilterNode | None) -> AsyncIterator[list[VectorNode]]:
        # A snapshot of the matching ids; nodes deleted meanwhile are skipped.
        ids = await self._locked(ws, lambda t: [t.ids[r] for r in t.filter_rows(filter)], heavy=filter is not None)
        for start in range(0, len(ids), page_size):
            page = await self._get(ws, ids[start : start + page_size])
            if page:
                yield page
