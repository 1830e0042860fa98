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


@pytest.mark.parametrize(
    "field, faceted, scanned",
    # "mixed": numbers in the whole workspace (a scan), strings only under the filter (facets)
    [("k", True, False), ("flag", True, False), ("tags", True, False), ("n", False, True), ("mixed", True, True), ("id", True, True)],
)
def test_facets_where_they_are_exact_and_the_same_answers_as_memory(field, faceted, scanned):
    memory = MemoryVectorStore()
    fill(memory)
    with QdrantVectorStore(location=":memory:") as store:
        fill(store)
        calls = recorded(store)
        for limit, offset, filter_dict in ((100, 0, None), (1, 1, None), (100, 0, {"k": {"ne": "b"}})):
            got = store.distinct_values("w", field, filter_dict=filter_dict, limit=limit, offset=offset)
            assert got == memory.distinct_values("w", field, filter_dict=filter_dict, limit=limit, offset=offset)
            assert [type(v.value) for v in got] == [type(v.value) for v in memory.distinct_values("w", field, filter_dict=filter_dict, limit=limit, offset=offset)]
        assert ("facet" in calls) is faceted
        assert ("scroll" in calls) is scanned
