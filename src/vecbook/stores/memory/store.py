"""MemoryVectorStore: every workspace in RAM, exact search by one matrix product."""

from __future__ import annotations

from typing import Any

from ...errors import WorkspaceNotFoundError
from ..engine.ann import make_spec
from ..engine.batch import NodeBatch
from ..engine.table_store import TableState, TableStore

__all__ = ["MemoryVectorStore"]


class MemoryVectorStore(TableStore):
    """Workspaces held in RAM; persist them with dump_workspace/load_workspace.

    ``store_dir`` is the default directory for dumps and loads. ``index="hnsw"``
    (``pip install 'vecbook[ann]'``) keeps an approximate HNSW index per workspace
    for unfiltered searches; ``index_params`` tunes it (``M``, ``ef_construction``,
    ``ef_search``, ``threads``, ``exact_below``; ``quantization="int8"`` or ``"binary"``
    for a graph of small codes whose candidates, ``rerank`` per result, are re-ranked
    by their exact score: cosine only). Filtered searches stay exact.
    """

    backend = "memory"

    def __init__(
        self,
        embedding_model=None,
        store_dir: str = "./memory_vector_store",
        batch_size: int = 1024,
        index: str | None = None,
        index_params: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, **kwargs)
        self._index_spec = make_spec(index, index_params, self.distance)
        self.store_dir = store_dir
        self._tables: dict[str, TableState] = {}

    def _describe(self) -> str:
        index = f", index={self._index_spec.kind!r}" if self._index_spec else ""
        return f"store_dir={self.store_dir!r}{index}"

    def _held_states(self) -> list[TableState]:
        return list(self._tables.values())

    def _state(self, ws: str) -> TableState:
        try:
            return self._tables[ws]
        except KeyError:
            raise WorkspaceNotFoundError(ws) from None

    async def _dimensions(self, ws: str) -> int | None:
        # Set once, by the first write, and never changed: read without a trip to a worker thread
        # (~0.1 ms a call; a search asks for it before searching).
        return self._state(ws).table.dimensions

    async def _exists(self, ws: str) -> bool:
        return ws in self._tables

    async def _create(self, ws: str, dimensions: int | None) -> None:
        self._tables.setdefault(ws, TableState(self._new_table(dimensions)))

    async def _drop(self, ws: str) -> None:
        self._tables.pop(ws, None)

    async def _list(self) -> list[str]:
        return list(self._tables)

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        await self._locked(ws, lambda t: t.upsert(batch))

    async def _delete(self, ws: str, ids: list[str]) -> None:
        await self._locked(ws, lambda t: t.delete(ids))
