"""Keyword (BM25) and hybrid search: the same answers on every backend, sync and async."""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import ValidationError, VectorNode
from vecbook.datasets import load_pypi_sample
from vecbook.stores.fusion import RRF_K, hybrid_depth
from vecbook.stores.keyword.tokens import tokenize

DOCS = {
    "fruit1": ("Apple pie with apple sauce and APPLE cider", {"kind": "food", "n": 1}),
    "fruit2": ("An apple a day keeps the doctor away", {"kind": "food", "n": 2}),
    "fruit3": ("Banana bread, banana split", {"kind": "food", "n": 3}),
    "car1": ("The engine of the car needs oil", {"kind": "car", "n": 4}),
    "car2": ("Electric car with an apple logo on the dashboard", {"kind": "car", "n": 5}),
    "rare": ("A quince is a rare fruit, like the apple", {"kind": "food", "n": 6}),
    "greek": ("Ωμέγα and ÉCOLE: Unicode words", {"kind": "other", "n": 7}),
}


def corpus() -> list[VectorNode]:
    rng = np.random.default_rng(7)
    return [
        VectorNode(unique_id=i, content=c, metadata=dict(md), vector=rng.standard_normal(16).astype(np.float32))
        for i, (c, md) in DOCS.items()
    ]


@pytest.fixture
async def docs(api, ws):
    await api.insert(corpus(), ws)
    await api.refresh(ws)
    return ws


async def test_keyword_hits_contain_the_query_terms_and_carry_bm25_scores(api, docs):
    hits = await api.search("apple", docs, top_k=10, mode="keyword")
    assert {h.unique_id for h in hits} == {"fruit1", "fruit2", "car2", "rare"}
    assert all("apple" in tokenize(h.content) for h in hits)
    scores = [h.score for h in hits]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
    assert all(h.metadata["score"] == h.score for h in hits)
    assert hits[0].unique_id == "fruit1"  # three occurrences, any case
    assert hits[0].vector is not None and len(hits[0].vector) == 16


async def test_a_rarer_term_weighs_more(api, docs):
    hits = await api.search("apple quince", docs, top_k=2, mode="keyword")
    assert hits[0].unique_id == "rare"  # the only doc with "quince", which is rarer than "apple"
    # a word in one document (twice) outweighs three occurrences of a word in most documents
    hits = await api.search("apple banana", docs, top_k=2, mode="keyword")
    assert [h.unique_id for h in hits] == ["fruit3", "fruit1"]


async def test_unicode_words_match_in_any_case(api, docs):
    assert [h.unique_id for h in await api.search("école ΩΜΈΓΑ", docs, top_k=3, mode="keyword")] == ["greek"]


async def test_no_shared_word_no_hit(api, docs):
    assert await api.search("zeppelin", docs, top_k=5, mode="keyword") == []
    assert await api.search("   ", docs, top_k=5, mode="keyword") == []


async def test_keyword_filters_and_top_k(api, docs):
    hits = await api.search("apple", docs, top_k=10, mode="keyword", filter_dict={"kind": "car"})
    assert [h.unique_id for h in hits] == ["car2"]
    hits = await api.search("apple", docs, top_k=10, mode="keyword", filter_dict={"n": {"$gte": 2}})
    assert {h.unique_id for h in hits} == {"fruit2", "car2", "rare"}
    assert len(await api.search("apple", docs, top_k=2, mode="keyword")) == 2
    assert await api.search("apple", docs, top_k=0, mode="keyword") == []
    with pytest.raises(ValidationError):
        await api.search("apple", docs, top_k=-1, mode="keyword")


async def test_keyword_on_an_empty_workspace(api, ws):
    assert await api.search("apple", ws, top_k=5, mode="keyword") == []
    assert await api.search("apple", ws, top_k=5, mode="hybrid") == []


async def test_deleted_and_replaced_nodes_leave_keyword_results_at_once(api, docs):
    assert "fruit2" in {h.unique_id for h in await api.search("apple", docs, top_k=10, mode="keyword")}
    await api.delete("fruit2", docs)
    await api.insert(VectorNode(unique_id="car2", content="Electric car, no fruit", vector=np.ones(16)), docs)
    await api.insert(VectorNode(unique_id="new", content="apple apple apple apple", vector=np.ones(16)), docs)
    await api.refresh(docs)
    hits = await api.search("apple", docs, top_k=10, mode="keyword")
    assert {h.unique_id for h in hits} == {"fruit1", "rare", "new"}
    assert hits[0].unique_id == "new"


async def test_user_score_in_metadata_survives_keyword_search(api, ws):
    await api.insert(VectorNode(unique_id="a", content="apple", metadata={"score": "five stars"}, vector=np.ones(16)), ws)
    (hit,) = await api.search("apple", ws, mode="keyword")
    assert hit.stored_metadata()["score"] == "five stars"


async def test_hybrid_is_the_reciprocal_rank_fusion_of_both_lists(api, docs):
    depth = hybrid_depth(3)
    vector = [h.unique_id for h in await api.search("apple car", docs, top_k=depth)]
    keyword = [h.unique_id for h in await api.search("apple car", docs, top_k=depth, mode="keyword")]
    fused = {i: 0.0 for i in vector + keyword}
    for ranked in (vector, keyword):
        for rank, i in enumerate(ranked, start=1):
            fused[i] += 1 / (RRF_K + rank)
    hits = await api.search("apple car", docs, top_k=len(fused), mode="hybrid")
    assert {h.unique_id for h in hits} == set(vector) | set(keyword)  # found by either list
    for h in hits:
        assert h.score == pytest.approx(fused[h.unique_id]) and h.metadata["score"] == h.score
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(await api.search("apple car", docs, top_k=3, mode="hybrid")) == 3


async def test_hybrid_filters_both_lists(api, docs):
    hits = await api.search("apple", docs, top_k=10, mode="hybrid", filter_dict={"kind": "car"})
    assert {h.unique_id for h in hits} == {"car1", "car2"}
    assert hits[0].unique_id == "car2"  # in both lists


async def test_unknown_mode_is_a_value_error_naming_the_modes(api, docs):
    with pytest.raises(ValueError, match="'vector', 'keyword', 'hybrid'"):
        await api.search("apple", docs, mode="bm25")


async def test_batch_search_takes_a_mode(api, docs):
    batch = await api.batch_search(["apple", "banana"], docs, top_k=3, mode="keyword")
    assert [[h.unique_id for h in hits] for hits in batch] == [
        [h.unique_id for h in await api.search(q, docs, top_k=3, mode="keyword")] for q in ("apple", "banana")
    ]
    with pytest.raises(ValidationError, match="strings"):
        await api.batch_search(np.ones((1, 16), dtype=np.float32), docs, mode="keyword")


async def test_keyword_search_needs_no_embedding_model(make, mode):
    api = make(mode, embedding_model=None)
    await api.create_workspace("w")
    await api.insert(corpus(), "w")
    await api.refresh("w")
    assert (await api.search("banana", "w", mode="keyword"))[0].unique_id == "fruit3"


QUERIES = ["python library", "http client", "testing framework", "aws sdk", "data validation", "async", "json schema", "google cloud api", "parser", "type hints"]


async def test_keyword_top_10_agrees_with_the_memory_store(make, mode, tmp_path, request):
    """Memory, local, Chroma and Qdrant share one tokenizer and tantivy's BM25, ties ordered by id.
    Elasticsearch ranks with its own engine: the same BM25, but its standard analyzer keeps "3.14" or
    "don't" as one token, and a real index counts deleted documents in its statistics until segments
    merge (and has per-shard statistics): on this corpus it agrees all the same."""
    from tests.backends import make_store

    sample = load_pypi_sample(limit=600)
    rng = np.random.default_rng(3)
    for node in sample:
        node.vector = rng.standard_normal(16).astype(np.float32)
    reference = make_store("memory", tmp_path / "ref", request)
    reference.create_workspace("w")
    reference.insert(sample, "w")
    api = make(mode)
    await api.create_workspace("w")
    await api.insert(sample, "w")
    await api.refresh("w")
    overlaps = []
    for q in QUERIES:
        want = reference.search(q, "w", top_k=10, mode="keyword")
        got = await api.search(q, "w", top_k=10, mode="keyword")
        overlaps.append(len({h.unique_id for h in want} & {h.unique_id for h in got}) / max(1, len(want)))
        assert got[0].score == pytest.approx(want[0].score, rel=0.02)  # the same BM25 scale everywhere
    reference.close()
    assert min(overlaps) >= 0.9, overlaps
