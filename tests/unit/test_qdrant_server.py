"""Qdrant server mode over REST, against the stand-in (tests/helpers/qdrant_standin): the async client's
path, request sizes within a server's limit, text JSON cannot carry, a server slower than the timeout.

The conformance suite runs the shared behaviour on the ``qdrant-server`` variant; these are the
server's own concerns.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from tests.helpers.qdrant_standin import QdrantStandin  # noqa: E402
from vecbook import BackendUnavailableError, QdrantVectorStore, ValidationError, VectorNode  # noqa: E402


def vec(i: int, dims: int = 8) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(dims).astype(np.float32)


def nodes(count: int, dims: int = 8, metadata=lambda i: {"i": i}) -> list[VectorNode]:
    return [VectorNode(unique_id=f"n{i}", content=f"c{i}", metadata=metadata(i), vector=vec(i, dims)) for i in range(count)]


def test_server_code_path_through_the_async_client():
    """The server code path (an AsyncQdrantClient per loop over REST, payload indexes) against the
    stand-in (tests/helpers/qdrant_standin), which answers as a Qdrant server."""
    with QdrantStandin() as server:
        store = QdrantVectorStore(url=server.url)

        async def scenario():
            await store.async_create_workspace("Srv", dimensions=8)
            await store.async_insert(nodes(30, metadata=lambda i: {"i": i, "tag": f"t{i % 3}", "day": f"2024-01-{i + 1:02d}"}), "Srv")
            spec = {"tag": {"ne": "t0"}, "i": {"gte": 3}, "day": {"lt": "2024-01-20"}}
            hits = await store.async_search_by_vector(vec(0), "Srv", top_k=30, filter_dict=spec)
            listed = [n async for n in store.async_iter_workspace_nodes("Srv", filter_dict=spec, page_size=4)]
            await store.async_delete(["n1", "n2"], "Srv")
            got = await store.async_get(["n3", "n1"], "Srv")
            return hits, listed, got, await store.async_count("Srv"), await store.async_list_workspaces()

        hits, listed, got, count, names = asyncio.run(scenario())
        store.close()
        made = [r.body["field_name"] for r in server.requests if r.path.endswith("/index")]
        scrolls = [r.body["limit"] for r in server.requests if r.path.endswith("/points/scroll")]
        assert not server.internal_errors
    expected = {f"n{i}" for i in range(3, 19) if i % 3}
    assert {h.unique_id for h in hits} == {n.unique_id for n in listed} == expected
    assert [n.unique_id for n in got] == ["n3"] and got[0].vector.tobytes() == vec(3).tobytes()
    assert count == 28 and names == ["Srv"]
    assert made == ["_v", "_f.s_tag", "_f.n_i", "_f.N_i[].h", "_f.t_day", "_f.T_day[].h"]  # each key a filter reads, once
    assert set(scrolls) == {4}  # a server pages as asked (local mode fetches big pages)


def test_writes_of_common_sizes_fit_a_servers_request_limit():
    """1,100 nodes of 1,536 dimensions (OpenAI's small model) make a 38 MiB upsert, over a default Qdrant
    server's 32 MiB request limit: they go in several requests."""
    many = nodes(1100, dims=1536, metadata=lambda i: {"source": "report.pdf", "page": i, "text": "words " * 40})
    with QdrantStandin(max_request_size_mb=32) as server, QdrantVectorStore(url=server.url, timeout=60) as store:
        store.create_workspace("w")
        store.insert(many, "w")
        upserts = [r.status for r in server.requests if r.method == "PUT" and r.path.endswith("/points")]
        assert store.count("w") == 1100 and store.get(["n1099"], "w")[0].vector.tobytes() == vec(1099, 1536).tobytes()
        assert not server.internal_errors
    assert len(upserts) > 2 and set(upserts) == {200}


def test_batch_searches_fit_a_servers_request_limit(monkeypatch):
    """A batch search goes in requests under the limit too (scaled down: 1 MiB, 100 queries of 1,536
    dimensions; 1,000 queries make 33 MiB)."""
    from vecbook.stores.qdrant import requests

    monkeypatch.setattr(requests, "REQUEST_BYTES", 512 * 1024)
    queries = np.stack([vec(i, 1536) for i in range(100)])
    with QdrantStandin(max_request_size_mb=1) as server, QdrantVectorStore(url=server.url) as store:
        store.create_workspace("w")
        store.insert(nodes(100, dims=1536), "w")
        hits = store.batch_search(queries, "w", top_k=1, filter_dict={"i": {"lt": 100}})
        batches = [r.status for r in server.requests if r.path.endswith("/query/batch")]
        assert not server.internal_errors
    assert [h[0].unique_id for h in hits] == [f"n{i}" for i in range(100)]
    assert len(batches) > 4 and set(batches) == {200}


@pytest.mark.parametrize("where", ["unique_id", "content", "metadata value", "metadata key", "filter"])
def test_a_lone_surrogate_is_refused_by_a_server_store_and_changes_nothing(where):
    """JSON over HTTP cannot carry a lone surrogate (e.g. from a file name decoded with surrogateescape): a
    typed error, not the client's serialization error, and the workspace as it was. Local mode keeps them."""
    odd = "report\udc80.pdf"
    node = {"unique_id": "n", "content": "c", "metadata": {"k": "v"}}
    node.update({"unique_id": {"unique_id": odd}, "content": {"content": odd}, "metadata value": {"metadata": {"k": odd}},
                 "metadata key": {"metadata": {odd: 1}}, "filter": {}}[where])
    with QdrantStandin() as server, QdrantVectorStore(url=server.url) as store:
        store.create_workspace("w")
        store.insert(nodes(3), "w")
        with pytest.raises(ValidationError, match="lone surrogate"):
            if where == "filter":
                store.search_by_vector(vec(0), "w", top_k=3, filter_dict={"k": odd})
            else:
                store.insert(nodes(2) + [VectorNode(vector=vec(9), **node)], "w")  # n0, n1 rewritten, then refused
        assert sorted(n.unique_id for n in store.iter_workspace_nodes("w")) == ["n0", "n1", "n2"]
        assert not server.internal_errors
    with QdrantVectorStore(location=":memory:") as local:
        local.create_workspace("w")
        local.insert([VectorNode(vector=vec(9), **node)], "w")
        assert local.count("w") == 1


def test_a_write_the_server_finishes_after_the_timeout_is_undone():
    """A server slower than ``timeout``: BackendUnavailableError, and the points it wrote anyway are taken back."""
    with QdrantStandin() as server, QdrantVectorStore(url=server.url, timeout=2) as store:
        store.create_workspace("w")
        store.insert(nodes(3), "w")
        server.delay(4.0, "PUT", "/points")
        with pytest.raises(BackendUnavailableError, match="not reachable"):
            store.insert(nodes(6)[3:], "w")
        assert sorted(n.unique_id for n in store.iter_workspace_nodes("w")) == ["n0", "n1", "n2"]
        assert [r.status for r in server.requests if r.method == "PUT" and r.path.endswith("/points")] == [200, 200]
        assert not server.internal_errors


def test_concurrent_first_filters_on_a_strict_collection_wait_for_the_same_indexes():
    """Two filtered calls at once on a fresh strict collection (as Qdrant Cloud may run it): the second
    must not send its filter while the first is still creating the indexes the filter needs."""
    with QdrantStandin(strict=True) as server, QdrantVectorStore(url=server.url) as store:
        store.create_workspace("w")
        store.insert(nodes(20, metadata=lambda i: {"v": i % 2}), "w")
        server.delay(1.0, "PUT", "/index", times=100, slow_work=True)  # building an index takes a while

        async def both():
            return await asyncio.gather(store.async_count("w", filter_dict={"v": 1}), store.async_count("w", filter_dict={"v": 0}))

        assert asyncio.run(both()) == [10, 10]
        assert not [r for r in server.requests if r.status == 400] and not server.internal_errors
