"""vecbook.integrations.langchain beyond LangChain's standard suite: filters, scores, MMR, embeddings both ways.

Tests taking ``backend_store`` run on every embedded backend (tests/integrations/conftest.py),
those taking ``mode`` in sync and async.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: E402

import vecbook  # noqa: E402
from vecbook import FilterError, HashEmbeddingModel, MemoryVectorStore, VectorNode  # noqa: E402
from vecbook.integrations.langchain import (  # noqa: E402
    LangChainEmbeddingModel,
    VecbookEmbeddings,
    VecbookVectorStore,
    relevance_score,
)

from tests.integrations.conftest import assert_import_names_the_extra, imported_with_vecbook, refuse_sync  # noqa: E402

DOCS = [
    Document(id="a1", page_content="the cat sat on the mat", metadata={"topic": "pets", "year": 2020, "tags": ["cat"]}),
    Document(id="a2", page_content="a dog chased the cat", metadata={"topic": "pets", "year": 2022, "tags": ["dog", "cat"]}),
    Document(id="a3", page_content="stock markets fell sharply", metadata={"topic": "finance", "year": 2021}),
    Document(id="a4", page_content="the cat and the dog sleep", metadata={"topic": "pets", "year": 2024, "score": "own"}),
    Document(id="a5", page_content="interest rates and markets", metadata={"topic": "finance", "year": 2024}),
]


@pytest.fixture(params=["sync", "async"])
def mode(request) -> str:
    return request.param


async def call(vs: VecbookVectorStore, mode: str, name: str, *args, **kwargs):
    """``vs.name(...)`` in sync mode, ``await vs.aname(...)`` in async mode."""
    if mode == "async":
        return await getattr(vs, f"a{name}")(*args, **kwargs)
    return getattr(vs, name)(*args, **kwargs)


def hash_store(tmp_path=None, **kwargs) -> MemoryVectorStore:
    return MemoryVectorStore(embedding_model=HashEmbeddingModel(dimensions=32), store_dir=str(tmp_path or "."), **kwargs)


@pytest.fixture
def filled(backend_store, mode):
    """A VecbookVectorStore holding DOCS (hash embeddings), on each embedded backend."""
    vs = VecbookVectorStore(backend_store, "docs", embedding=VecbookEmbeddings(HashEmbeddingModel(dimensions=32)))
    assert vs.add_documents(DOCS) == [d.id for d in DOCS]
    return vs


# ---- the extra -----------------------------------------------------------------------------


def test_missing_langchain_core_names_the_extra(monkeypatch):
    assert_import_names_the_extra(monkeypatch, "langchain_core", "vecbook.integrations.langchain", "langchain")


def test_import_vecbook_does_not_import_langchain():
    assert not imported_with_vecbook("langchain")


# ---- documents and metadata ------------------------------------------------------------------


async def test_metadata_comes_back_as_stored(filled, mode):
    hits = await call(filled, mode, "similarity_search", "the cat and the dog sleep", k=5)
    assert {d.id for d in hits} == {d.id for d in DOCS}
    by_id = {d.id: d for d in DOCS}
    for doc in hits:
        assert doc == by_id[doc.id]  # content and metadata untouched: no score in it
    assert hits[0].id == "a4" and hits[0].metadata["score"] == "own"  # the user's own "score" is kept


async def test_get_by_ids_keeps_order_and_skips_missing(filled, mode):
    docs = await call(filled, mode, "get_by_ids", ["a3", "missing", "a1", "a3"])
    assert [d.id for d in docs] == ["a3", "a1"]
    assert docs[0] == DOCS[2]


async def test_add_texts_ids_and_idempotence(backend_store, mode):
    vs = VecbookVectorStore(backend_store, embedding=DeterministicFakeEmbedding(size=8))
    ids = await call(vs, mode, "add_texts", ["x", "y", "z"], [{"n": 1}, {"n": 2}, {"n": 3}], ids=["1", None, "3"])
    assert ids[0] == "1" and ids[2] == "3" and isinstance(ids[1], str) and ids[1]
    assert await call(vs, mode, "add_texts", ["x2", "z"], [{"n": 10}, {"n": 3}], ids=["1", "3"]) == ["1", "3"]
    assert backend_store.count("langchain") == 3
    assert [d.page_content for d in await call(vs, mode, "get_by_ids", ["1", "3"])] == ["x2", "z"]
    # an id twice in one call: the last one wins, as two upserts would
    assert await call(vs, mode, "add_texts", ["first", "second"], ids=["dup", "dup"]) == ["dup", "dup"]
    assert [d.page_content for d in await call(vs, mode, "get_by_ids", ["dup"])] == ["second"]
    assert await call(vs, mode, "add_texts", []) == []
    with pytest.raises(ValueError):
        await call(vs, mode, "add_texts", ["a", "b"], [{}])


async def test_delete(filled, mode):
    assert await call(filled, mode, "delete", ["a1", "nope"]) is True
    assert await call(filled, mode, "delete", ["nope"]) is True
    assert await call(filled, mode, "delete", []) is True
    assert await call(filled, mode, "get_by_ids", ["a1", "a2"]) == [DOCS[1]]
    # ids=None: every document goes (LangChain's contract), the workspace stays
    assert await call(filled, mode, "delete") is True
    assert filled.store.count("docs") == 0
    assert await call(filled, mode, "similarity_search", "cat") == []


async def test_before_the_first_write_the_workspace_is_empty(tmp_path, mode):
    # the store's model has 32 dimensions, the LangChain embeddings 6: the workspace takes the latter
    store = hash_store(tmp_path)
    vs = VecbookVectorStore(store, "later", embedding=DeterministicFakeEmbedding(size=6))
    assert await call(vs, mode, "similarity_search", "foo") == []
    assert await call(vs, mode, "get_by_ids", ["x"]) == []
    assert await call(vs, mode, "delete", ["x"]) is True
    assert await call(vs, mode, "delete") is True
    assert await call(vs, mode, "max_marginal_relevance_search", "foo") == []
    assert not store.exist_workspace("later")
    await call(vs, mode, "add_texts", ["foo"], ids=["x"])
    assert store.exist_workspace("later") and store.get("x", "later")[0].vector.shape == (6,)


def test_without_embedding_the_stores_model_is_used(tmp_path):
    store = hash_store(tmp_path)
    vs = VecbookVectorStore(store, "own")
    assert isinstance(vs.embeddings, VecbookEmbeddings) and vs.embeddings.model is store.embedding_model
    vs.add_texts(["the cat sat", "markets fell"], ids=["c", "m"])
    stored = store.get("c", "own")[0].vector
    assert np.allclose(stored, store.embedding_model.get_embeddings("the cat sat"))
    assert store.search("the cat sat", "own")[0].unique_id == "c"  # vecbook's own search agrees
    with pytest.raises(vecbook.ValidationError):
        VecbookVectorStore(MemoryVectorStore(store_dir=str(tmp_path)))  # no embeddings anywhere
    with pytest.raises(TypeError):
        VecbookVectorStore(object())  # type: ignore[arg-type]


async def test_unknown_keywords_are_refused(filled, mode):
    with pytest.raises(TypeError, match="filters"):
        await call(filled, mode, "similarity_search", "cat", filters={"topic": "pets"})
    with pytest.raises(ValueError):
        await call(filled, mode, "similarity_search", "cat", k=-1)
    assert await call(filled, mode, "similarity_search", "cat", k=0) == []
    # LangChain's indexing API passes batch_size to add_documents: accepted
    assert await call(filled, mode, "add_documents", [Document(page_content="new", id="n")], batch_size=10) == ["n"]


# ---- filters -------------------------------------------------------------------------------


async def test_filters(filled, mode):
    docs = await call(filled, mode, "similarity_search", "cat", k=10, filter={"topic": "pets"})
    assert {d.id for d in docs} == {"a1", "a2", "a4"}
    docs = await call(filled, mode, "similarity_search", "markets", k=10, filter={"year": {"gte": 2022}})
    assert {d.id for d in docs} == {"a2", "a4", "a5"}
    docs = await call(filled, mode, "similarity_search", "cat", k=10, filter={"$and": [{"topic": "pets"}, {"year": {"lt": 2024}}]})
    assert {d.id for d in docs} == {"a1", "a2"}
    docs = await call(filled, mode, "similarity_search", "cat", k=1, filter={"topic": "finance"})
    assert len(docs) == 1 and docs[0].metadata["topic"] == "finance"
    pairs = await call(filled, mode, "similarity_search_with_relevance_scores", "cat", k=10, filter={"topic": "finance"})
    assert {d.id for d, _ in pairs} == {"a3", "a5"}
    mmr = await call(filled, mode, "max_marginal_relevance_search", "cat", k=2, fetch_k=10, filter={"topic": "pets"})
    assert len(mmr) == 2 and {d.id for d in mmr} <= {"a1", "a2", "a4"}
    with pytest.raises(FilterError):
        await call(filled, mode, "similarity_search", "cat", filter={"$nonsense": 1})


async def test_retriever_takes_the_portable_filter(filled, mode):
    retriever = filled.as_retriever(search_kwargs={"filter": {"topic": "finance"}, "k": 5})
    docs = await retriever.ainvoke("markets") if mode == "async" else retriever.invoke("markets")
    assert {d.id for d in docs} == {"a3", "a5"}
    assert all(d.metadata["topic"] == "finance" for d in docs)
    mmr = filled.as_retriever(search_type="mmr", search_kwargs={"filter": {"year": 2024}, "k": 2, "fetch_k": 5})
    docs = await mmr.ainvoke("cat") if mode == "async" else mmr.invoke("cat")
    assert {d.id for d in docs} == {"a4", "a5"}


# ---- scores --------------------------------------------------------------------------------


def _cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_scores_and_relevance_scores(filled, mode):
    model = filled.embedding.model
    query = "the cat on a mat"
    q = model.get_embeddings(query)
    expected = {d.id: _cos(q, model.get_embeddings(d.page_content)) for d in DOCS}
    pairs = await call(filled, mode, "similarity_search_with_score", query, k=5)
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)
    for doc, score in pairs:
        assert score == pytest.approx(expected[doc.id], abs=1e-5)
        assert "score" not in doc.metadata or doc.metadata["score"] == "own"
    relevance = await call(filled, mode, "similarity_search_with_relevance_scores", query, k=5)
    assert [d.id for d, _ in relevance] == [d.id for d, _ in pairs]
    for doc, value in relevance:
        assert 0.0 <= value <= 1.0
        assert value == pytest.approx((1 + expected[doc.id]) / 2, abs=1e-5)
    top = await call(filled, mode, "similarity_search_with_relevance_scores", "the cat sat on the mat", k=1)
    assert top[0][0].id == "a1" and top[0][1] == pytest.approx(1.0)
    # score_threshold (LangChain's own keyword) keeps the documents at or above it
    threshold = (relevance[0][1] + relevance[-1][1]) / 2
    kept = await call(filled, mode, "similarity_search_with_relevance_scores", query, k=5, score_threshold=threshold)
    assert [d.id for d, _ in kept] == [d.id for d, v in relevance if v >= threshold]
    retriever = filled.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": threshold, "k": 5})
    docs = await retriever.ainvoke(query) if mode == "async" else retriever.invoke(query)
    assert [d.id for d in docs] == [d.id for d, _ in kept]


def test_relevance_score_formulas():
    assert relevance_score(1.0) == 1.0 and relevance_score(-1.0) == 0.0 and relevance_score(0.0) == 0.5
    assert relevance_score(0.2, "cosine") == pytest.approx(0.6)
    # dot: the cosine formula (unit vectors), clipped
    assert relevance_score(0.2, "dot") == pytest.approx(0.6)
    assert relevance_score(7.0, "dot") == 1.0 and relevance_score(-3.0, "dot") == 0.0
    # euclidean: score = -d; for unit vectors d² = 2 - 2cos, so 1 - d²/4 = (1 + cos)/2
    for cos in (-1.0, -0.3, 0.0, 0.5, 1.0):
        d = math.sqrt(2 - 2 * cos)
        assert relevance_score(-d, "euclidean") == pytest.approx((1 + cos) / 2)
    assert relevance_score(-5.0, "euclidean") == 0.0


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_relevance_scores_agree_across_distances_for_unit_vectors(tmp_path, distance):
    # HashEmbeddingModel gives unit vectors: every distance maps to (1 + cos) / 2
    model = HashEmbeddingModel(dimensions=32)
    store = MemoryVectorStore(store_dir=str(tmp_path), distance=distance)
    vs = VecbookVectorStore(store, embedding=VecbookEmbeddings(model))
    vs.add_documents(DOCS)
    q = model.get_embeddings("cat markets")
    for doc, value in vs.similarity_search_with_relevance_scores("cat markets", k=5):
        assert value == pytest.approx((1 + _cos(q, model.get_embeddings(doc.page_content))) / 2, abs=1e-5)


# ---- max marginal relevance ----------------------------------------------------------------


async def test_max_marginal_relevance(backend_store, mode):
    # three near-duplicates and one different text: with diversity, the different one is picked second
    vs = VecbookVectorStore(backend_store, embedding=VecbookEmbeddings(HashEmbeddingModel(dimensions=64)))
    texts = ["red apples and green apples", "red apples and green apples too", "red apples and green apples again", "red cars"]
    await call(vs, mode, "add_texts", texts, ids=["d1", "d2", "d3", "other"])
    plain = await call(vs, mode, "similarity_search", "red apples", k=2)
    assert "other" not in [d.id for d in plain]
    diverse = await call(vs, mode, "max_marginal_relevance_search", "red apples", k=2, fetch_k=4, lambda_mult=0.1)
    assert diverse[1].id == "other" and diverse[0].id in {"d1", "d2", "d3"}
    assert diverse[0].metadata == {}  # no score in the metadata
    q = vs.embeddings.embed_query("red apples")
    by_vector = await call(vs, mode, "max_marginal_relevance_search_by_vector", q, k=2, fetch_k=4, lambda_mult=0.1)
    assert [d.id for d in by_vector] == [d.id for d in diverse]
    same = await call(vs, mode, "max_marginal_relevance_search", "red apples", k=3, fetch_k=4, lambda_mult=1.0)
    assert [d.id for d in same] == [d.id for d in await call(vs, mode, "similarity_search", "red apples", k=3)]
    assert await call(vs, mode, "max_marginal_relevance_search", "red apples", k=0) == []


async def test_search_by_vector(filled, mode):
    q = filled.embeddings.embed_query("stock markets fell sharply")
    docs = await call(filled, mode, "similarity_search_by_vector", q, k=2)
    assert docs[0] == DOCS[2]
    pairs = await call(filled, mode, "similarity_search_with_score_by_vector", q, k=1, filter={"topic": "pets"})
    assert pairs[0][0].metadata["topic"] == "pets" and -1.0 <= pairs[0][1] <= 1.0


# ---- async is native -------------------------------------------------------------------------


async def test_async_methods_call_vecbook_async_methods(tmp_path, monkeypatch):
    store = hash_store(tmp_path)
    vs = VecbookVectorStore(store, embedding=VecbookEmbeddings(store.embedding_model))
    refuse_sync(monkeypatch, store, "insert", "delete", "get", "search", "search_by_vector", "create_workspace", "batch_search",
                "read_columns")
    refuse_sync(monkeypatch, store.embedding_model, "get_embeddings")
    assert await vs.aadd_documents(DOCS) == [d.id for d in DOCS]
    assert (await vs.asimilarity_search("cat", k=1, filter={"topic": "pets"}))[0].metadata["topic"] == "pets"
    assert len(await vs.asimilarity_search_with_relevance_scores("cat", k=2)) == 2
    assert len(await vs.amax_marginal_relevance_search("cat", k=2)) == 2
    assert [d.id for d in await vs.aget_by_ids(["a2"])] == ["a2"]
    await vs.adelete(["a2"])
    assert await vs.aget_by_ids(["a2"]) == []
    assert len(await vs.as_retriever(search_kwargs={"k": 2}).ainvoke("cat")) == 2
    await vs.adelete()
    assert await store.async_count("langchain") == 0


# ---- constructors ----------------------------------------------------------------------------


def test_from_texts_and_documents(tmp_path):
    embedding = DeterministicFakeEmbedding(size=8)
    vs = VecbookVectorStore.from_texts(["foo", "bar"], embedding, [{"n": 1}, {"n": 2}], ids=["f", "b"])
    assert isinstance(vs.store, MemoryVectorStore) and vs.workspace_id == "langchain"
    assert vs.similarity_search("bar", k=1) == [Document(id="b", page_content="bar", metadata={"n": 2})]
    store = MemoryVectorStore(store_dir=str(tmp_path))
    vs = VecbookVectorStore.from_documents(DOCS[:2], embedding, store=store, workspace_id="mine")
    assert vs.store is store and store.count("mine") == 2 and vs.get_by_ids(["a1"]) == [DOCS[0]]


async def test_afrom_texts_and_documents(tmp_path):
    embedding = DeterministicFakeEmbedding(size=8)
    vs = await VecbookVectorStore.afrom_texts(["foo", "bar"], embedding, ids=["f", "b"])
    assert [d.id for d in await vs.asimilarity_search("foo", k=2)] == ["f", "b"]
    store = MemoryVectorStore(store_dir=str(tmp_path))
    vs = await VecbookVectorStore.afrom_documents(DOCS, embedding, store=store, workspace_id="mine")
    assert store.count("mine") == len(DOCS) and await vs.aget_by_ids(["a5"]) == [DOCS[4]]


# ---- embeddings, both ways ---------------------------------------------------------------


async def test_vecbook_model_as_langchain_embeddings():
    model = HashEmbeddingModel(dimensions=16)
    embeddings = VecbookEmbeddings(model)
    assert isinstance(embeddings, Embeddings)
    texts = ["one text", "another text"]
    expected = model.get_embeddings(texts)
    docs = embeddings.embed_documents(texts)
    assert isinstance(docs, list) and isinstance(docs[0], list) and isinstance(docs[0][0], float)
    assert np.allclose(docs, expected)
    assert np.allclose(embeddings.embed_query("one text"), expected[0])
    assert np.allclose(await embeddings.aembed_documents(texts), expected)
    assert np.allclose(await embeddings.aembed_query("another text"), expected[1])
    with pytest.raises(TypeError):
        VecbookEmbeddings(DeterministicFakeEmbedding(size=4))  # type: ignore[arg-type]


class CountingEmbeddings(Embeddings):
    """DeterministicFakeEmbedding that records which path embedded what."""

    def __init__(self, size: int = 8):
        self.fake = DeterministicFakeEmbedding(size=size)
        self.calls: list[str] = []

    def embed_documents(self, texts):
        self.calls.append("sync")
        return self.fake.embed_documents(texts)

    def embed_query(self, text):
        self.calls.append("sync-query")
        return self.fake.embed_query(text)

    async def aembed_documents(self, texts):
        self.calls.append("async")
        return self.fake.embed_documents(texts)


@pytest.mark.parametrize("use_async", [True, False])
async def test_langchain_embeddings_as_vecbook_model(backend_store, mode, use_async):
    lc = CountingEmbeddings(size=8)
    model = LangChainEmbeddingModel(lc, use_async=use_async, cache_size=0)
    assert isinstance(model, vecbook.BaseEmbeddingModel) and model.model_name == "CountingEmbeddings"
    texts = ["alpha beta", "gamma delta", "epsilon"]
    assert np.allclose(model.get_embeddings(texts), lc.fake.embed_documents(texts))
    assert model.dimensions == 8  # learned from the first call
    backend_store.embedding_model = model
    api = backend_store if mode == "sync" else None
    nodes = [VectorNode(unique_id=f"n{i}", content=t, metadata={"i": i}) for i, t in enumerate(texts)]
    lc.calls.clear()
    if api is not None:
        backend_store.create_workspace("lc")
        backend_store.insert(nodes, "lc")
        hits = backend_store.search("gamma delta", "lc", top_k=1)
    else:
        await backend_store.async_create_workspace("lc")
        await backend_store.async_insert(nodes, "lc")
        hits = await backend_store.async_search("gamma delta", "lc", top_k=1)
    assert hits[0].unique_id == "n1" and hits[0].score == pytest.approx(1.0)
    assert np.allclose(backend_store.get("n2", "lc")[0].vector, lc.fake.embed_documents(["epsilon"])[0])
    assert set(lc.calls) == ({"async"} if use_async else {"sync"})


def test_langchain_model_options():
    lc = DeterministicFakeEmbedding(size=4)
    model = LangChainEmbeddingModel(lc, "fake-4", dimensions=4, batch_size=2)
    assert model.model_name == "fake-4" and model.batch_size == 2
    assert model.get_embeddings(["a", "b", "c"]).shape == (3, 4)
    with pytest.raises(vecbook.EmbeddingError):
        LangChainEmbeddingModel(lc, dimensions=5, max_retries=0).get_embeddings("x")  # 4-d vectors, 5 promised
    with pytest.raises(TypeError):
        LangChainEmbeddingModel(HashEmbeddingModel())  # type: ignore[arg-type]


# ---- LangChain's indexing API -------------------------------------------------------------


async def test_langchain_indexing_api(tmp_path, mode):
    """``langchain_core.indexing.index`` (record manager, cleanup) drives add_documents and delete."""
    from langchain_core.indexing import InMemoryRecordManager, aindex, index

    store = MemoryVectorStore(store_dir=str(tmp_path))
    vs = VecbookVectorStore(store, "indexed", embedding=DeterministicFakeEmbedding(size=8))
    manager = InMemoryRecordManager(namespace="vecbook/indexed")
    manager.create_schema()

    async def run(docs):
        kwargs = {"cleanup": "full", "key_encoder": "sha256"}
        return await aindex(docs, manager, vs, **kwargs) if mode == "async" else index(docs, manager, vs, **kwargs)

    first = [Document(page_content=t, metadata={"source": "s"}) for t in ("one", "two", "three")]
    assert await run(first) == {"num_added": 3, "num_updated": 0, "num_skipped": 0, "num_deleted": 0}
    assert store.count("indexed") == 3
    assert (await run(first))["num_skipped"] == 3  # unchanged: nothing written
    second = [Document(page_content=t, metadata={"source": "s"}) for t in ("one", "four")]
    assert await run(second) == {"num_added": 1, "num_updated": 0, "num_skipped": 1, "num_deleted": 2}
    assert sorted(n.content for n in store.iter_workspace_nodes("indexed")) == ["four", "one"]
