"""Keyword search for stores without a usable BM25 engine (Chroma, Qdrant): an index of the workspace's contents.

Built from every node's content (read page by page through the store's
``_pages`` hook) on the first keyword search of a workspace. Writes through this
store object are then applied to it before the next keyword search (the
changes ``writes.py`` reports: milliseconds); a failed write, ``refresh(ws)``
or a node count that differs from the index's (another client inserted or
deleted) rebuilds it. Hits are read back with ``_get`` and filtered there, so a node another
client deleted is never returned and contents are current; only another
client's content change with the count unchanged is seen after ``refresh``.

Thread-safe without an asyncio lock (a store may be used from vecbook's loop and
the caller's): each index has a lock, taken in worker threads only, and the
list of pending writes one held for a list operation.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from ..._aio import to_thread
from ...filters import FilterNode
from ...node import VectorNode
from ..matching import MIN_OVERFETCH, keep_matching_pairs
from .bm25 import Bm25Index

if TYPE_CHECKING:
    from ..base import BaseVectorStore

__all__ = ["ScanIndexes"]

Changes = list[tuple[list[str], "list[str] | None"]]


class _ScanIndex:
    """A Bm25Index keyed by position in ``ids``, with the writes not applied yet."""

    def __init__(self, ids: list[str], contents: list[str]):
        self.ids: list[str | None] = list(ids)  # key -> id (None: removed)
        self.keys = {node_id: key for key, node_id in enumerate(ids)}
        self.index = Bm25Index(enumerate(contents))
        self._pending: Changes = []
        self._pending_lock = threading.Lock()
        self._lock = threading.Lock()

    def note(self, changes: Changes) -> None:
        with self._pending_lock:
            self._pending.extend(changes)

    def size(self) -> int:
        """How many nodes the index holds, the writes noted so far applied (in a worker thread)."""
        with self._lock:
            self._catch_up()
            return len(self.keys)

    def top(self, text: str, limit: int) -> list[tuple[str, float]]:
        """The best ``limit`` (id, score) pairs (in a worker thread)."""
        with self._lock:
            self._catch_up()
            return [(self.ids[key], score) for key, score in self.index.top(text, limit, self.ids.__getitem__)]

    def _catch_up(self) -> None:
        with self._pending_lock:
            changes, self._pending = self._pending, []
        if not changes:
            return
        final: dict[int, str | None] = {}  # key -> its content after all the changes (None: removed)
        for ids, contents in changes:
            for i, node_id in enumerate(ids):
                key = self.keys.get(node_id)
                if contents is None:
                    if key is not None:
                        del self.keys[node_id]
                        self.ids[key] = None
                        final[key] = None
                    continue
                if key is None:
                    key = self.keys[node_id] = len(self.ids)
                    self.ids.append(node_id)
                final[key] = contents[i]
        self.index.update([k for k, c in final.items() if c is None], [(k, c) for k, c in final.items() if c is not None])


class ScanIndexes:
    """One index per workspace of one store."""

    def __init__(self) -> None:
        self._cached: dict[str, _ScanIndex] = {}

    def note(self, ws: str, changes: Changes | None) -> None:
        """Record a write through the store (``None``: start over)."""
        if changes is None:
            self._cached.pop(ws, None)
        elif (scan := self._cached.get(ws)) is not None:
            scan.note(changes)

    async def search(
        self, store: BaseVectorStore, ws: str, texts: list[str], limit: int, filter: FilterNode | None
    ) -> list[list[tuple[VectorNode, float]]]:
        """Per query, the best ``limit`` nodes of the workspace matching ``filter`` with their BM25 scores.

        The filter is applied to the nodes read back; while too few match, more hits are
        asked for (4x a round) and only the new ones read.
        """
        scan = await self._current(store, ws)
        out = []
        for text in texts:
            fetch = limit if filter is None else max(2 * limit, MIN_OVERFETCH)
            read: dict[str, VectorNode] = {}
            while True:
                hits = await to_thread(scan.top, text, fetch)
                missing = [i for i, _ in hits if i not in read]
                if missing:
                    read.update((n.unique_id, n) for n in await store._get(ws, missing))
                kept = keep_matching_pairs(filter, [(read[i], score) for i, score in hits if i in read])
                if len(kept) >= limit or len(hits) < fetch:
                    break
                fetch *= 4
            out.append(kept[:limit])
        return out

    async def _current(self, store: BaseVectorStore, ws: str) -> _ScanIndex:
        count = await store._count(ws)
        scan = self._cached.get(ws)
        if scan is not None and await to_thread(scan.size) == count:
            return scan
        ids: list[str] = []
        contents: list[str] = []
        async with contextlib.aclosing(store._pages(ws, store.batch_size, None)) as pages:
            async for page in pages:
                ids.extend(n.unique_id for n in page)
                contents.extend(n.content for n in page)
        scan = self._cached[ws] = await to_thread(_ScanIndex, ids, contents)
        return scan
