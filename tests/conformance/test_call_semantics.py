"""How a public call runs, on every backend, sync and async: exactly once, all or nothing, with the
arguments it documents, never after close()."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest

from vecbook import HashEmbeddingModel, StoreClosedError, VectorNode

from tests.backends import make_store

from .dataset import nodes


def one_shot(items):
    """A generator: it can be read once only."""
    yield from items


def ids(items) -> list[str]:
    return sorted(n.unique_id for n in items)


# ---- exactly once: one-shot iterators, one embedding per text -------------------------------------


async def test_one_shot_iterators_are_read_once_and_fully(api, ws, model):
    items = nodes(12)
    for node in items[6:]:
        node.vector = None  # these need embedding: the call may not be run twice
    await api.insert(one_shot(items), ws)
    assert await api.count(ws) == 12
    assert sorted(model.embedded) == sorted(n.content for n in items[6:])  # each text embedded once

    got = await api.get(one_shot([f"d{i:03d}" for i in range(4)]), ws)
    assert ids(got) == [f"d{i:03d}" for i in range(4)]

    results = await api.batch_search(one_shot(["document 1", "document 2"]), ws, top_k=3)
    assert len(results) == 2 and all(len(r) == 3 for r in results)

    await api.delete(one_shot([f"d{i:03d}" for i in range(3)]), ws)
    assert await api.count(ws) == 9

    loaded = await api.load_workspace("loaded", nodes=one_shot(nodes(5)))
    assert loaded["size"] == 5 and await api.count("loaded") == 5


async def test_a_query_is_embedded_once(api, ws, model):
    await api.insert(nodes(10), ws)
    model.embedded.clear()
    await api.search("a question", ws, top_k=2)
    assert model.embedded == ["a question"]


# ---- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, near",
    [
        (lambda api, ws: api.search("q", ws, top_k=2, filter={"rank": 1}), "filter_dict"),
        (lambda api, ws: api.search_by_vector(np.ones(16), ws, filters={"rank": 1}), "filter_dict"),
        (lambda api, ws: api.batch_search(["q"], ws, k=3), "top_k"),
        (lambda api, ws: api.insert(nodes(1), ws, workspace="x"), "workspace_id"),
        (lambda api, ws: api.delete("d000", ws, where={"rank": 1}), "filter_dict"),  # delete takes filter_dict now
        (lambda api, ws: api.nodes(ws, filter={"rank": 1}), "filter_dict"),
    ],
)
async def test_unknown_keyword_arguments_raise_type_error_with_a_hint(api, ws, call, near):
    await api.insert(nodes(5), ws)
    with pytest.raises(TypeError, match="unexpected keyword") as info:
        await call(api, ws)
    message = str(info.value)
    if near:
        assert f"did you mean {near!r}" in message
    assert await api.count(ws) == 5  # nothing happened


# ---- all or nothing under cancellation and interrupts --------------------------------------------


class SlowModel(HashEmbeddingModel):
    """Embeds one text per batch, slowly: a call that embeds takes a while."""

    def __init__(self):
        super().__init__(dimensions=16, batch_size=1, max_concurrency=1, max_retries=0)
        self.batches = 0

    def embed_batch(self, texts):
        self.batches += 1
        time.sleep(0.01)
        return super().embed_batch(texts)


async def test_a_cancelled_insert_leaves_all_or_nothing_and_the_store_works(make):
    api = make("async", batch_size=50)
    await api.create_workspace("w")
    existing = nodes(30)
    await api.insert(existing, "w")
    fresh = [VectorNode(unique_id=f"n{i}", content=f"c{i}", vector=np.random.default_rng(i).standard_normal(16).astype(np.float32)) for i in range(2000)]
    changed = [VectorNode(unique_id=n.unique_id, content="changed", vector=n.vector) for n in existing]
    task = asyncio.ensure_future(api.insert(fresh + changed, "w"))
    for _ in range(2000):  # cancel once the write has started (some chunks may have landed)
        await asyncio.sleep(0.001)
        if task.done() or await api.count("w") > 30:
            break
    task.cancel()
    try:
        await task
        completed = True
    except asyncio.CancelledError:
        completed = False
    count = await api.count("w")
    contents = {n.content for n in await api.get([n.unique_id for n in existing], "w")}
    if completed:
        assert count == 2030 and contents == {"changed"}
    else:
        assert (count, contents) in ((30, {f"document {i}" for i in range(30)}), (2030, {"changed"}))
    await api.insert(nodes(3), "w")  # still usable
    assert len(await api.search_by_vector(np.ones(16), "w", top_k=3)) == 3


def test_ctrl_c_during_a_sync_insert_leaves_all_or_nothing(backend, tmp_path, request):
    # A plain sync test: the main thread is not running an event loop (asyncio.Runner would
    # turn SIGINT into a cancellation of its own task), as in a script or a notebook's sync cell.
    store = make_store(backend, tmp_path, request, embedding_model=SlowModel(), batch_size=10)
    try:
        store.create_workspace("w")
        items = [VectorNode(unique_id=f"n{i}", content=f"text {i}") for i in range(100)]  # ~1 s of embedding
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))  # a real Ctrl-C
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                store.insert(items, "w")
                time.sleep(5)  # if the insert finished first, the interrupt lands here
        finally:
            timer.cancel()
        assert store.count("w") in (0, 100)
        store.insert(nodes(2), "w")
        assert store.count("w") in (2, 102)
    finally:
        store.close()


# ---- closed stores ---------------------------------------------------------------------------------


async def test_every_call_on_a_closed_store_raises_store_closed(make, mode):
    api = make(mode)
    await api.create_workspace("w")
    await api.insert(nodes(3), "w")
    await api.close()
    await api.close()  # closing twice is fine
    calls = [
        lambda: api.count("w"),
        lambda: api.insert(nodes(1), "w"),
        lambda: api.search_by_vector(np.ones(16), "w"),
        lambda: api.list_workspaces(),
        lambda: api.nodes("w"),
        lambda: api.dump_workspace("w"),
    ]
    for call in calls:
        with pytest.raises(StoreClosedError):
            await call()


# ---- iteration -----------------------------------------------------------------------------------------


async def test_sync_iteration_runs_callbacks_on_the_callers_thread(make):
    api = make("sync")
    store = api.store
    store.create_workspace("w")
    store.insert(nodes(25), "w")
    seen = []

    def callback(node):
        seen.append(threading.current_thread())
        return store.count("w")  # a callback may call the store

    assert list(store.iter_workspace_nodes("w", page_size=10, callback_fn=callback)) == [25] * 25
    assert set(seen) == {threading.current_thread()}


# ---- concurrent first writes -----------------------------------------------------------------------------


async def test_concurrent_first_inserts_into_a_workspace_without_dimensions_keep_every_node(make):
    api = make("async", embedding_model=None)
    for trial in range(5):
        ws = f"w{trial}"
        await api.create_workspace(ws)  # no model: the size comes with the first insert
        batches = [[VectorNode(unique_id=f"{b}-{i}", vector=np.ones(16, np.float32) * (i + 1)) for i in range(n)] for b, n in enumerate((300, 2, 120))]
        outcomes = await asyncio.gather(*(api.insert(batch, ws) for batch in batches), return_exceptions=True)
        assert [o for o in outcomes if o is not None] == []
        assert ids(await api.nodes(ws)) == sorted(n.unique_id for batch in batches for n in batch)
