"""vecbook._aio: the background loop after fork, per-loop resources, and finishing what a cancelled call started."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time

import numpy as np
import pytest

import vecbook
from vecbook import HashEmbeddingModel, LocalVectorStore, MemoryVectorStore, VectorNode, _aio


def _child_uses_stores(store_dir: str, parent_store: LocalVectorStore, queue) -> None:
    fresh = MemoryVectorStore()
    fresh.create_workspace("w", dimensions=4)
    fresh.insert(VectorNode(unique_id="c", vector=np.ones(4)), "w")
    ids = [n.unique_id for n in fresh.iter_workspace_nodes("w")]  # goes through the loop
    fresh.close()
    parent_store.insert(VectorNode(unique_id="from-child", vector=np.ones(4)), "w")  # a store opened in the parent
    queue.put((ids, parent_store.count("w")))


def test_a_forked_child_gets_a_loop_of_its_own(tmp_path):
    store = LocalVectorStore(store_dir=str(tmp_path))
    store.create_workspace("w", dimensions=4)
    store.insert(VectorNode(unique_id="p", vector=np.ones(4)), "w")
    assert [n.unique_id for n in store.iter_workspace_nodes("w")] == ["p"]  # the parent's loop runs
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_uses_stores, args=(str(tmp_path), store, queue))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (["c"], 2)
    assert store.count("w") == 2  # the parent sees the child's write
    store.close()


def test_per_loop_resources_go_with_their_loop():
    model = HashEmbeddingModel(dimensions=8)
    for _ in range(50):
        asyncio.run(model.async_get_embeddings(["a", "b"]))
    assert len(model._semaphores) <= 1  # closed loops are dropped: no loop kept alive per asyncio.run


def test_a_cancelled_caller_waits_for_its_worker_thread():
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.3)
        finished.set()

    async def scenario() -> None:
        task = asyncio.ensure_future(_aio.to_thread(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set()  # the thread's work is over before the cancellation is seen

    asyncio.run(scenario())


def test_sync_calls_from_vecbook_loop_callbacks_are_refused():
    store = MemoryVectorStore()
    store.create_workspace("w", dimensions=4)

    async def inside() -> None:
        store.count("w")

    with pytest.raises(RuntimeError, match="async_"):
        _aio.run_sync(inside())
    assert store.count("w") == 0


def test_public_names():
    assert issubclass(vecbook.StoreClosedError, vecbook.VecbookError)
