"""Qdrant specifics of introspection: distinct values of string and boolean fields come from facet
counts, fields holding numbers (and local mode's UUID rewriting) from a scan; the answers equal
the memory backend's either way."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from vecbook import MemoryVectorStore, QdrantVectorStore, VectorNode  # noqa: E402

METADATAS = [
    {"k": "a", "flag": True, "n": 1, "tags": ["x", "y", "y"]},
    {"k": "a", "flag": False, "n": 1.0, "tags": ["y"]},
    {"k": "b", "flag": True, "mixed": 1},
    {"k": "c", "mixed": "1", "id": "12345678123456781234567812345678"},
    {"k": "c", "id": "12345678-1234-5678-1234-567812345678"},
]


def fill(store) -> None:
    store.create_workspace("w")
    rng = np.random.default_rng(0)
    store.insert([VectorNode(unique_id=f"n{i}", content="c", metadata=md, vector=rng.standard_normal(4)) for i, md in enumerate(METADATAS)], "w")


def recorded(store) -> list[str]:
    calls: list[str] = []
    original = store._client.call

    async def call(method, /, **kwargs):
        calls.append(method)
        return await original(method, **kwargs)

    store._client.call = call
    return calls


@pytest.fixture(params=["local", "server"])
def where(request):
    """Keyword arguments of a store: local mode, or a server (the stand-in, its unawaited updates landing late)."""
    if request.param == "local":
        yield {"location": ":memory:"}
        return
    from tests.helpers.qdrant_standin import QdrantStandin

    with QdrantStandin(lag=0.5) as server:
        yield {"url": server.url}
        assert not server.internal_errors


@pytest.mark.parametrize(
    "field, faceted, scanned",
    # "mixed": numbers in the whole workspace (a scan), strings only under the filter (facets);
    # "id": local mode rewrites UUID-like strings (a scan), a server's keyword index keeps them
    [("k", True, False), ("flag", True, False), ("tags", True, False), ("n", False, True), ("mixed", True, True), ("id", True, None)],
)
def test_facets_where_they_are_exact_and_the_same_answers_as_memory(field, faceted, scanned, where):
    if scanned is None:
        scanned = "location" in where
    memory = MemoryVectorStore()
    fill(memory)
    with QdrantVectorStore(**where) as store:
        fill(store)
        calls = recorded(store)
        for limit, offset, filter_dict in ((100, 0, None), (1, 1, None), (100, 0, {"k": {"ne": "b"}})):
            got = store.distinct_values("w", field, filter_dict=filter_dict, limit=limit, offset=offset)
            assert got == memory.distinct_values("w", field, filter_dict=filter_dict, limit=limit, offset=offset)
            assert [type(v.value) for v in got] == [type(v.value) for v in memory.distinct_values("w", field, filter_dict=filter_dict, limit=limit, offset=offset)]
        assert ("facet" in calls) is faceted
        assert ("scroll" in calls) is scanned


def test_facets_right_after_the_first_write_on_a_server_whose_indexes_land_late():
    """The payload indexes a facet needs are waited for: created unawaited, they may not be there yet."""
    from tests.helpers.qdrant_standin import QdrantStandin

    with QdrantStandin(lag=5.0) as server, QdrantVectorStore(url=server.url) as store:
        fill(store)
        assert store.distinct_values("w", "k") == [("a", 2), ("c", 2), ("b", 1)]
        waited = [r.params.get("wait") for r in server.requests if r.path.endswith("/index")]
        assert waited[-2:] == ["true", "true"]


def test_a_read_only_key_gets_distinct_values_by_scanning(caplog):
    """A read-only API key cannot make the indexes facets need: the values come from a scan, with a warning."""
    import warnings

    from tests.helpers.qdrant_standin import QdrantStandin

    memory = MemoryVectorStore()
    fill(memory)
    with QdrantStandin(api_key="rw", read_only_api_key="ro") as server, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the client's "Api key is used with an insecure connection"
        with QdrantVectorStore(url=server.url, api_key="rw") as writer:
            fill(writer)
        with QdrantVectorStore(url=server.url, api_key="ro") as reader:
            calls = recorded(reader)
            assert reader.distinct_values("w", "k") == memory.distinct_values("w", "k")
            assert reader.distinct_values("w", "flag", filter_dict={"k": "a"}) == memory.distinct_values("w", "flag", filter_dict={"k": "a"})
        assert "scroll" in calls and "could not create a Qdrant payload index" in caplog.text
