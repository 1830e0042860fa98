"""Keyword search on Elasticsearch: the stand-in's ``match`` query and BM25, and the store's requests."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("elasticsearch")
pytest.importorskip("aiohttp")

from elasticsearch import BadRequestError, Elasticsearch  # noqa: E402

from tests.helpers.es_standin import EsStandin  # noqa: E402
from tests.helpers.es_standin.text import analyze, stored_length  # noqa: E402
from vecbook import EsVectorStore, VecbookError, VectorNode  # noqa: E402
from vecbook.stores.elasticsearch.documents import mappings  # noqa: E402
from vecbook.stores.elasticsearch import index_name  # noqa: E402

DOCS = ["the quick brown fox", "the lazy dog", "quick quick dog jumps over the lazy fox", ""]


@pytest.fixture
def server():
    with EsStandin() as standin:
        yield standin
        assert not standin.internal_errors


def bm25(term: str, doc: list[str], docs: list[list[str]]) -> float:
    with_field = [d for d in docs if d]
    avgdl = sum(len(d) for d in with_field) / len(with_field)
    n = sum(term in d for d in with_field)
    idf = math.log(1 + (len(with_field) - n + 0.5) / (n + 0.5))
    tf = doc.count(term)
    return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * stored_length(len(doc)) / avgdl))


def test_the_standard_analyzer_splits_on_word_boundaries_and_lowercases():
    assert analyze("Don't STOP: 3.14, U.S.A. foo_bar café") == ["don't", "stop", "3.14", "u.s.a", "foo_bar", "café"]
    assert analyze("中文abc") == ["中", "文", "abc"]
    assert analyze("x" * 300) == ["x" * 255, "x" * 45]


def test_one_byte_norms_are_exact_below_25_tokens_and_lossy_above():
    assert [stored_length(n) for n in range(25)] == list(range(25))
    assert stored_length(100) <= 100 and stored_length(1000) != 1000


def test_match_scores_are_lucene_bm25_and_filters_do_not_score(server):
    es = Elasticsearch(server.url)
    es.indices.create(index="t", mappings={"properties": {"content": {"type": "text"}, "k": {"type": "keyword"}}})
    for i, text in enumerate(DOCS):
        es.index(index="t", id=str(i), document={"content": text, "k": "odd" if i % 2 else "even"})
    es.indices.refresh(index="t")
    tokens = [analyze(d) for d in DOCS]
    resp = es.search(index="t", query={"match": {"content": "quick fox"}})
    got = {h["_id"]: h["_score"] for h in resp["hits"]["hits"]}
    want = {str(i): bm25("quick", t, tokens) + bm25("fox", t, tokens) for i, t in enumerate(tokens) if {"quick", "fox"} & set(t)}
    assert got.keys() == want.keys()
    for i in want:
        assert got[i] == pytest.approx(want[i], rel=1e-5)
    assert [h["_id"] for h in resp["hits"]["hits"]] == sorted(want, key=want.get, reverse=True)
    filtered = es.search(index="t", query={"bool": {"must": [{"match": {"content": "quick fox"}}], "filter": [{"term": {"k": "even"}}]}})
    assert {h["_id"]: h["_score"] for h in filtered["hits"]["hits"]} == {"0": got["0"], "2": got["2"]}
    both = es.search(index="t", query={"match": {"content": {"query": "quick fox", "operator": "and"}}})
    assert {h["_id"] for h in both["hits"]["hits"]} == {"0", "2"}
    assert es.search(index="t", query={"match": {"content": "!!"}})["hits"]["hits"] == []


def test_match_on_an_unindexed_text_field_is_refused_as_es_does(server):
    es = Elasticsearch(server.url)
    es.indices.create(index="t", mappings={"properties": {"content": {"type": "text", "index": False}}})
    with pytest.raises(BadRequestError, match="not indexed"):
        es.search(index="t", query={"match": {"content": "x"}})


def test_keyword_search_sends_a_match_query_with_the_filter_in_filter_context(server):
    with EsVectorStore(hosts=server.url) as store:
        store.create_workspace("w")
        store.insert([VectorNode(unique_id=str(i), content=t, metadata={"i": i}, vector=np.ones(4)) for i, t in enumerate(DOCS)], "w")
        server.requests.clear()
        hits = store.search("quick fox", "w", top_k=2, mode="keyword", filter_dict={"i": {"$lte": 2}})
        assert [h.unique_id for h in hits] == ["0", "2"]  # the shorter document first
        (call,) = [c for c in server.requests if c.path.endswith("_msearch")]
        body = call.body[1]
        assert body["query"]["bool"]["must"] == [{"match": {"content": {"query": "quick fox"}}}]
        assert body["query"]["bool"]["filter"] and body["size"] == 3  # one more than asked: are there ties at the cut?


def test_an_index_whose_content_is_not_searchable_gets_a_clear_error(server):
    es = Elasticsearch(server.url)
    mapping = mappings("w", 4, "cosine", {})
    mapping["properties"]["content"] = {"type": "text", "index": False}
    es.indices.create(index=index_name("vecbook-", "w"), mappings=mapping)
    with EsVectorStore(hosts=server.url) as store:
        with pytest.raises(VecbookError, match="copy_workspace"):
            store.search("x", "w", mode="keyword")
