"""The writes of one public call, applied wholly or not at all.

A backend writes a batch through its ``_upsert``/``_delete`` hooks in chunks of
at most ``await store._write_chunk()`` nodes (``None``: any batch in one atomic
write, as memory and local do). A call whose writes span several chunks, or
several operations (a load upserts, then deletes what it replaced), first
remembers the previous state of every id it touches; if the call fails, is
cancelled (a timeout, a cancelled notebook cell) or interrupted (Ctrl-C on a sync
call), that state is written back before the error goes on, so the workspace is
as it was. A workspace the call created is dropped instead. Each chunk runs to its
end even when the call is cancelled (:func:`vecbook._aio.finish`): no write
lands after the call has returned.

If writing the previous state back fails too (the server went away), the caller
gets :class:`PartialWriteError` naming the ids whose state is unknown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np

from .._aio import finish
from ..errors import PartialWriteError
from ..node import VectorNode
from .engine.batch import NodeBatch

if TYPE_CHECKING:
    from .base import BaseVectorStore

__all__ = ["Writes", "all_or_nothing"]


class Writes:
    """Upserts and deletes into one workspace that :func:`all_or_nothing` can undo."""

    def __init__(self, store: BaseVectorStore, ws: str, created: bool, single: bool):
        self.store, self.ws, self.created = store, ws, created
        self._single = single  # the call makes one write: an atomic backend needs no undo record
        self._previous: dict[str, VectorNode | None] = {}  # id -> its node before the call (None: absent)
        self._touched: list[str] = []  # ids written to, in order, the one in flight included
        # What the call wrote, for derived indexes (keyword): (ids, contents) upserted or (ids, None) deleted
        # (the caller's lists, not copies); None once the call failed (undone or in doubt). A write made
        # outside upsert/delete must set it to None, so that those indexes start over.
        self.changes: list[tuple[list[str], list[str] | None]] | None = []

    async def upsert(self, batch: NodeBatch) -> None:
        await self._apply(batch.ids, lambda start, stop: self.store._upsert(self.ws, batch.slice(start, stop)))
        if self.changes is not None and len(batch):
            self.changes.append((batch.ids, batch.contents))

    async def delete(self, ids: list[str]) -> None:
        await self._apply(ids, lambda start, stop: self.store._delete(self.ws, ids[start:stop]))
        if self.changes is not None and ids:
            self.changes.append((ids, None))

    async def _apply(self, ids: list[str], write) -> None:
        if not ids:
            return
        chunk = await self.store._write_chunk()
        if not (self._single and chunk is None) and not self.created:
            await self._remember(ids)
        step = chunk or len(ids)
        for start in range(0, len(ids), step):
            self._touched.extend(ids[start : start + step])
            await finish(write(start, start + step))

    async def _remember(self, ids: list[str]) -> None:
        new = [i for i in dict.fromkeys(ids) if i not in self._previous]
        if new:
            found = {node.unique_id: node for node in await self.store._get(self.ws, new)}
            self._previous.update((i, found.get(i)) for i in new)

    async def undo(self) -> None:
        """Put back what the writes so far changed (drop the workspace if this call created it)."""
        if self.created:
            await self.store._drop(self.ws)
            return
        if not self._touched or not self._previous:
            return  # nothing written, or one atomic write that either happened wholly or not at all
        touched = dict.fromkeys(self._touched)
        gone = [i for i in touched if self._previous.get(i) is None]
        back = [self._previous[i] for i in touched if self._previous.get(i) is not None]
        chunk = await self.store._write_chunk() or max(1, len(touched))
        for start in range(0, len(gone), chunk):
            await self.store._delete(self.ws, gone[start : start + chunk])
        for start in range(0, len(back), chunk):
            await self.store._upsert(self.ws, _as_batch(back[start : start + chunk]))


@contextlib.asynccontextmanager
async def all_or_nothing(store: BaseVectorStore, ws: str, created: bool = False, single: bool = False) -> AsyncIterator[Writes]:
    """``async with all_or_nothing(store, ws) as writes:`` — undo ``writes`` if the block does not complete."""
    writes = Writes(store, ws, created, single)
    try:
        yield writes
    except BaseException as exc:
        writes.changes = None
        try:
            await finish(writes.undo())
        except Exception as undo_error:
            unknown = list(dict.fromkeys(writes._touched))
            raise PartialWriteError(
                f"a write to workspace {ws!r} failed ({type(exc).__name__}: {exc}) and putting back the previous "
                f"state failed too ({type(undo_error).__name__}: {undo_error}); the nodes listed may be in either state",
                unknown,
            ) from exc
        raise
    finally:
        store._wrote(ws, writes.changes)  # derived indexes (keyword) follow, or start over if it failed


def _as_batch(nodes: list[VectorNode]) -> NodeBatch:
    vectors = np.ascontiguousarray(np.stack([node.vector for node in nodes]), dtype=np.float32)
    return NodeBatch([n.unique_id for n in nodes], [n.content for n in nodes], [n.stored_metadata() for n in nodes], vectors)
