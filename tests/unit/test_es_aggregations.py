"""Elasticsearch specifics of introspection: distinct values come from one terms aggregation (plus
one msearch for the stored form of numbers and long strings), counts from ``_count``; and the
stand-in's terms aggregation behaves as Elasticsearch documents it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("elasticsearch")
pytest.importorskip("aiohttp")

from elasticsearch import ApiError, Elasticsearch  # noqa: E402

from tests.helpers.es_standin import EsStandin  # noqa: E402
from vecbook import EsVectorStore, MemoryVectorStore, VectorNode  # noqa: E402

LONG = "é" * 20_000  # 40,000 UTF-8 bytes: its filter term is cut and hashed


@pytest.fixture
def server():
    with EsStandin() as standin:
        yield standin
        assert not standin.internal_errors


def metadatas() -> list[dict]:
    return [
        {"k": "a", "n": 1, "tags": ["x", "y"]},
        {"k": "a", "n": 1.0, "tags": ["y"]},
        {"k": "b", "n": 2.5, "flag": True},
        {"k": LONG, "n": 2**53 + 1, "flag": False},
        {"k": LONG, "n": 2**53, "tags": "y"},
        {"k": 'q"uo\\te.[]*', "n": -3},
    ]


def fill(store) -> None:
    store.create_workspace("w")
    rng = np.random.default_rng(0)
    store.insert([VectorNode(unique_id=f"n{i}", content="c", metadata=md, vector=rng.standard_normal(4)) for i, md in enumerate(metadatas())], "w")


def searches(server) -> list:
    return [c for c in server.requests if c.path.endswith("/_search") or c.path.endswith("_msearch")]


def test_distinct_values_come_from_one_aggregation_and_match_memory(server):
    memory = MemoryVectorStore()
    fill(memory)
    with EsVectorStore(hosts=server.url) as store:
        fill(store)
        for field in ("k", "n", "tags", "flag"):
            server.requests.clear()
            got = store.distinct_values("w", field)
            assert got == memory.distinct_values("w", field), field
            assert [type(v.value) for v in got] == [type(v.value) for v in memory.distinct_values("w", field)]
            calls = searches(server)
            assert "aggs" in calls[0].body and len(calls) <= 2, field  # the aggregation, then one msearch at most
        assert store.distinct_values("w", "k", limit=1, offset=1) == [(LONG, 2)]
        assert store.distinct_values("w", "n", filter_dict={"k": "a"}) == [(1, 2)]
        server.requests.clear()
        assert store.count("w", filter_dict={"tags": "y"}) == 3
        assert [c.path.rsplit("/", 1)[-1] for c in server.requests] == ["_count"]


def test_the_standin_terms_aggregation(server):
    es = Elasticsearch(server.url)
    es.indices.create(index="t", mappings={"properties": {"f": {"type": "keyword"}, "x": {"type": "long"}}})
    for i, values in enumerate([["a", "b"], ["b"], ["b", "c"], ["a.b"], ["c"]]):
        es.index(index="t", id=str(i), document={"f": values, "x": i}, refresh=True)
    resp = es.search(index="t", size=0, aggs={"v": {"terms": {"field": "f"}}})
    assert [(b["key"], b["doc_count"]) for b in resp["aggregations"]["v"]["buckets"]] == [("b", 3), ("c", 2), ("a", 1), ("a.b", 1)]
    resp = es.search(index="t", size=0, query={"range": {"x": {"gte": 2}}}, aggs={"v": {"terms": {"field": "f", "include": "a\\..*|c", "size": 1}}})
    assert resp["aggregations"]["v"] == {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 1, "buckets": [{"key": "c", "doc_count": 2}]}
    resp = es.search(index="t", size=0, aggs={"v": {"terms": {"field": "f", "order": {"_key": "desc"}, "size": 2}}})
    assert [b["key"] for b in resp["aggregations"]["v"]["buckets"]] == ["c", "b"]
    for bad in ({"v": {"avg": {"field": "x"}}}, {"v": {"terms": {"field": "f", "include": "a&b"}}}, {"v": {"terms": {"field": "f", "exclude": "a"}}}):
        with pytest.raises(ApiError):
            es.search(index="t", size=0, aggs=bad)
