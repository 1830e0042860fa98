"""Read many nodes in one round trip to vecbook's event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._aio import run_sync

T = TypeVar("T")


def collect(store, workspace_id: str, fn: Callable[[Any], T] = lambda node: node, limit: int | None = None,
            filter_dict: dict | None = None, page_size: int = 1024) -> list[T]:
    """``[fn(node) for node in store.iter_workspace_nodes(...)]``, but as one coroutine.

    The sync iterator costs a thread round trip per node; this costs one per
    call, which matters at tens of thousands of nodes. Public store API only.
    """
    if limit is not None:
        page_size = max(1, min(page_size, limit))

    async def run() -> list[T]:
        out: list[T] = []
        if limit is not None and limit <= 0:
            return out
        async for node in store.async_iter_workspace_nodes(workspace_id, filter_dict=filter_dict, limit=limit, page_size=page_size):
            out.append(fn(node))
        return out

    return run_sync(run())
