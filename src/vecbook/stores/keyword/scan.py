"""Keyword search for stores without a usable BM25 engine (Chroma, Qdrant): an index of the workspace's contents.

Built from every node's content (read page by page through the store's
``_pages`` hook) on the first keyword search, and kept per workspace until it
goes stale: any write through this store object drops it (``BaseVectorStore._wrote``),
so does ``refresh(ws)``, and a changed node count (another client inserted or
deleted) rebuilds it. Hits are read back with ``_get``, so a node another client
deleted meanwhile is never returned and contents are current; only a content
change by another client with the count unchanged is seen after ``refresh``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..._aio import to_thread
from ...node import VectorNode
from .bm25 import Bm25Index

if TYPE_CHECKING:
    from ..base import BaseVectorStore

__all__ = ["ScanIndexes"]


class ScanIndexes:
    """One (count, ids, index) per workspace of one store."""

    def __init__(self) -> None:
        self._cached: dict[str, tuple[int, list[str], Bm25Index]] = {}

    def forget(self, ws: str) -> None:
        self._cached.pop(ws, None)

    async def search(self, store: BaseVectorStore, ws: str, texts: list[str], limit: int) -> list[list[tuple[VectorNode, float]]]:
        """Per query, the best ``limit`` nodes of the workspace (unfiltered) with their BM25 scores."""
        ids, index = await self._index(store, ws)
        out = []
        for text in texts:
            hits = await to_thread(index.top, text, limit, ids.__getitem__)
            found = {n.unique_id: n for n in await store._get(ws, [ids[key] for key, _ in hits])} if hits else {}
            out.append([(found[ids[key]], score) for key, score in hits if ids[key] in found])
        return out

    async def _index(self, store: BaseVectorStore, ws: str) -> tuple[list[str], Bm25Index]:
        count = await store._count(ws)
        cached = self._cached.get(ws)
        if cached is not None and cached[0] == count:
            return cached[1], cached[2]
        ids: list[str] = []
        contents: list[str] = []
        async with contextlib.aclosing(store._pages(ws, store.batch_size, None)) as pages:
            async for page in pages:
                ids.extend(n.unique_id for n in page)
                contents.extend(n.content for n in page)
        index = await to_thread(Bm25Index, enumerate(contents))
        self._cached[ws] = (len(ids), ids, index)
        return ids, index
