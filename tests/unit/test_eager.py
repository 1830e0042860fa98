"""Sync calls without a loop hop (vecbook._aio eager runs): same answers, same guarantees."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from tests.backends import make_store, variants
from vecbook import HashEmbeddingModel, LocalVectorStore, MemoryVectorStore, VectorNode, _aio


@pytest.fixture(params=["memory", "local"])
def store(request, tmp_path):
    model = HashEmbeddingModel(16)
    s = MemoryVectorStore(embedding_model=model) if request.param == "memory" else LocalVectorStore(embedding_model=model, store_dir=tmp_path)
    s.create_workspace("ws")
    yield s
    s.close()


def nodes(count: int, prefix: str = "n", dims: int = 16) -> list[VectorNode]:
    rng = np.random.default_rng(len(prefix) + count)
    return [VectorNode(unique_id=f"{prefix}{i}", content=f"text {i}", metadata={"i": i}, vector=rng.standard_normal(dims)) for i in range(count)]


def counts() -> tuple[int, int]:
    return _aio.eager_counts["eager"], _aio.eager_counts["fallback"]


def test_reads_and_vector_writes_skip_the_loop(store):
    before = counts()
    batch = nodes(20)
    store.insert(batch, "ws")
    hits = store.search_by_vector(batch[3].vector, "ws", top_k=3)
    assert hits[0].unique_id == "n3" and hits[0].score == pytest.approx(1.0)
    assert [n.unique_id for n in store.get(["n5", "n1"], "ws")] == ["n5", "n1"]
    store.delete("n5", "ws")
    assert store.count("ws") == 19
    assert store.exist_workspace("ws") and store.list_workspaces() == ["ws"]
    eager, fallback = counts()
    assert (eager - before[0], fallback - before[1]) == (7, 0)


def test_embedding_falls_back_to_the_loop_and_writes_once(store):
    before = counts()
    store.insert(VectorNode(unique_id="t", content="a text to embed"), "ws")
    assert store.search("a text to embed", "ws", top_k=1)[0].unique_id == "t"
    assert store.count("ws") == 1
    assert counts()[1] - before[1] == 2  # insert and search each ran once more, on the loop


def test_sync_calls_inside_a_running_loop(store):
    """As in Jupyter: the calling thread runs an event loop, and sync methods still work."""
    store.insert(nodes(10), "ws")

    async def cell():
        hits = store.search_by_vector(nodes(10)[2].vector, "ws", top_k=1)  # eager
        found = store.search("text 2", "ws", top_k=1)  # needs the loop: the background one
        return hits[0].unique_id, len(found)

    assert asyncio.run(cell()) == ("n2", 1)


def test_threads_writing_at_once_lose_nothing(store):
    errors = []

    def writer(t: int):
        try:
            for chunk in range(5):
                store.insert(nodes(10, prefix=f"t{t}c{chunk}x"), "ws")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count("ws") == 8 * 5 * 10
    assert len({n.unique_id for n in store.iter_workspace_nodes("ws")}) == 400


def test_a_hook_that_awaits_is_run_on_the_loop():
    class Awaiting(MemoryVectorStore):
        async def _count(self, ws):
            await asyncio.sleep(0)  # suspends: the eager run is abandoned, the loop runs it
            return await super()._count(ws)

    s = Awaiting()
    s.create_workspace("ws")
    s.insert(nodes(4), "ws")
    before = counts()
    assert s.count("ws") == 4
    assert counts()[1] - before[1] == 1


def test_sync_call_from_a_vecbook_coroutine_is_refused(store):
    async def inside():
        return store.count("ws")

    with pytest.raises(RuntimeError, match="async_"):
        _aio.run_sync(inside())


def test_errors_are_raised_from_the_eager_run(store):
    from vecbook import WorkspaceNotFoundError

    before = counts()
    with pytest.raises(WorkspaceNotFoundError):
        store.search_by_vector(np.ones(16), "missing", top_k=1)
    assert counts()[1] == before[1]


def test_a_subclass_override_of_an_async_method_also_changes_its_sync_twin():
    class Doubling(MemoryVectorStore):
        async def async_count(self, workspace_id, **kwargs):
            return 2 * await super().async_count(workspace_id, **kwargs)

    s = Doubling()
    s.create_workspace("ws")
    s.insert(nodes(3), "ws")
    assert s.count("ws") == 6


@pytest.mark.parametrize("variant", [v for v in variants() if "elasticsearch" not in v])
def test_sync_calls_run_without_the_loop(variant, tmp_path, request):
    """memory, local, Chroma (embedded, and on a server with its blocking client) and Qdrant
    local mode: 11 sync calls, none through the loop."""
    s = make_store(variant, tmp_path, request)
    assert s._runs_eagerly
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((30, 16)).astype(np.float32)
    before = counts()
    s.create_workspace("w")
    s.insert([VectorNode(unique_id=f"n{i}", metadata={"i": i, "tags": [f"t{i % 3}"]}, vector=vectors[i]) for i in range(30)], "w")
    assert s.search_by_vector(vectors[1], "w", top_k=3)[0].unique_id == "n1"
    s.search_by_vector(vectors[1], "w", top_k=3, filter_dict={"i": {"gte": 10}, "tags": "t1"})
    s.batch_search(vectors[:2], "w", top_k=3)
    assert [n.vector.tobytes() for n in s.get(["n1", "n2"], "w")] == [vectors[1].tobytes(), vectors[2].tobytes()]
    s.delete("n1", "w")
    assert s.count("w") == 29 and s.exist_workspace("w") and s.list_workspaces() == ["w"]
    s.delete_workspace("w")
    eager, fallback = counts()
    assert (eager - before[0], fallback - before[1]) == (11, 0)
    s.close()


def test_server_clients_keep_the_loop():
    pytest.importorskip("chromadb")
    pytest.importorskip("qdrant_client")
    from vecbook import ChromaVectorStore, QdrantVectorStore

    assert QdrantVectorStore(host="127.0.0.1", port=9)._runs_eagerly is False  # awaited on the loop
    assert ChromaVectorStore(host="127.0.0.1", port=9)._runs_eagerly is True  # a blocking HttpClient serves sync calls
