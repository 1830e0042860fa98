"""MemoryVectorStore: every workspace in RAM, exact search by one matrix product."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from ..errors import WorkspaceNotFoundError
from ..filters import FilterNode
from ..node import VectorNode
from .base import BaseVectorStore
from .batch import NodeBatch
from .table import NodeTable

__all__ = ["MemoryVectorStore", "TableStore"]


class TableStore(BaseVectorStore):
    """Hooks over one NodeTable per workspace, shared by the memory and local backends.

    Heavy work (matrix products, filters) runs in a worker thread so async
    callers never block their event loop; a lock per workspace serialises access.
    """

    def _table(self, ws: str) -> tuple[NodeTable, threading.RLock]:
        raise NotImplementedError

    async def _run(self, ws: str, fn, *args: Any, heavy: bool = False):
        table, lock = self._table(ws)

        def locked():
            with lock:
                return fn(table, *args)

        return await asyncio.to_thread(locked) if heavy else locked()

    async def _dimensions(self, ws: str) -> int | None:
        return await self._run(ws, lambda t: t.dimensions)

    async def _count(self, ws: str) -> int:
        return await self._run(ws, len)

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        def get(table: NodeTable):
            return [table.node(table.row_of[i], ws) for i in ids if i in table.row_of]

        return await self._run(ws, get)

    async def _search(self, ws: str, queries: np.ndarray, top_k: int, filter: FilterNode | None) -> list[list[VectorNode]]:
        def search(table: NodeTable):
            hits = table.search(queries, top_k, filter, self.distance)
            return [[table.node(r, ws) for r in rows] for rows in hits]

        return await self._run(ws, search, heavy=True)

    async def _pages(self, ws: str, page_size: int, filter: FilterNode | None) -> AsyncIterator[list[VectorNode]]:
        # A snapshot of the matching ids; nodes deleted meanwhile are skipped.
        ids = await self._run(ws, lambda t: [t.ids[r] for r in t.filter_rows(filter)], heavy=filter is not None)
        for start in range(0, len(ids), page_size):
            page = await self._get(ws, ids[start : start + page_size])
            if page:
                yield page


class MemoryVectorStore(TableStore):
    """Workspaces held in RAM; persist them with dump_workspace/load_workspace.

    ``store_dir`` is the default directory for dumps and loads.
    """

    backend = "memory"

    def __init__(self, embedding_model=None, store_dir: str = "./memory_vector_store", batch_size: int = 1024, **kwargs: Any):
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, **kwargs)
        self.store_dir = store_dir
        self._tables: dict[str, tuple[NodeTable, threading.RLock]] = {}

    def _describe(self) -> str:
        return f"store_dir={self.store_dir!r}"

    def _table(self, ws: str) -> tuple[NodeTable, threading.RLock]:
        try:
            return self._tables[ws]
        except KeyError:
            raise WorkspaceNotFoundError(ws) from None

    async def _exists(self, ws: str) -> bool:
        return ws in self._tables

    async def _create(self, ws: str, dimensions: int | None) -> None:
        self._tables.setdefault(ws, (NodeTable(dimensions), threading.RLock()))

    async def _drop(self, ws: str) -> None:
        self._tables.pop(ws, None)

    async def _list(self) -> list[str]:
        return list(self._tables)

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        await self._run(ws, NodeTable.upsert, batch, heavy=len(batch) > 1000)

    async def _delete(self, ws: str, ids: list[str]) -> None:
        await self._run(ws, NodeTable.delete, ids)
