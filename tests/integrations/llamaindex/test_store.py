"""vecbook.integrations.llamaindex: nodes, MMR, documents, errors and the extra, through LlamaIndex's own query path.

Tests taking ``backend_store`` run on every embedded backend (``conftest.py`` here)
and on Elasticsearch through its in-process stand-in, those taking ``mode`` in sync and async. Everything runs offline: embeddings come from
vecbook's ``HashEmbeddingModel`` (through ``VecbookEmbedding``) or LlamaIndex's ``MockEmbedding``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    VectorStoreQuery,
)

from tests.integrations.conftest import (
    assert_import_names_the_extra,
    imported_with_vecbook,
    refuse_sync,
)
from tests.integrations.llamaindex.corpus import (
    ALL,
    DIMS,
    DOC_OF,
    METADATA,
    TEXTS,
    F,
    call,
    embed_model,
    filters,
    nodes,
    retrieve,
    text_node,
)
from vecbook import FilterError, HashEmbeddingModel, MemoryVectorStore, VectorNode
from vecbook.integrations.llamaindex import (
    VecbookEmbedding,
    VecbookVectorStore,
)

# ---- nodes and metadata ----------------------------------------------------------------------


async def test_nodes_come_back_as_added(index, vs, mode):
    hits = await retrieve(index, mode, "the cat sat on the mat", similarity_top_k=6)
    assert hits[0].node.node_id == "n1" and {h.node.node_id for h in hits} == ALL
    for hit in hits:
        node = hit.node
        assert node.metadata == METADATA[node.node_id]  # no score in it; the user's own "score" stays
        assert node.text == TEXTS[node.node_id]
        assert node.ref_doc_id == DOC_OF[node.node_id]
    assert next(h for h in hits if h.node.node_id == "n4").node.metadata["score"] == "own"
    # the scores are vecbook's similarities, best first
    stored = vs.store.search_by_vector(embed_model().get_query_embedding("the cat sat on the mat"), "li", top_k=6)
    assert [h.node.node_id for h in hits] == [n.unique_id for n in stored]
    assert [h.score for h in hits] == pytest.approx([n.score for n in stored], abs=1e-5)


async def test_add_upserts_and_returns_ids(vs, mode):
    model = embed_model()
    batch = nodes()[:2]
    for node in batch:
        node.embedding = model.get_text_embedding(node.text)
    assert await call(vs, mode, "add", batch) == ["n1", "n2"]
    changed = text_node("n1", "replaced text", {"topic": "new"}, "d9")
    changed.embedding = model.get_text_embedding("replaced text")
    twice = text_node("n7", "first", {}, "d9")
    twice.embedding = model.get_text_embedding("first")
    again = text_node("n7", "second", {}, "d9")
    again.embedding = model.get_text_embedding("second")
    assert await call(vs, mode, "add", [changed, twice, again]) == ["n1", "n7", "n7"]
    assert vs.store.count("li") == 3
    got = {n.node_id: n for n in await call(vs, mode, "get_nodes", ["n1", "n7"])}
    assert got["n1"].text == "replaced text" and got["n1"].metadata == {"topic": "new"} and got["n1"].ref_doc_id == "d9"
    assert got["n7"].text == "second"  # the last one wins
    assert await call(vs, mode, "add", []) == []


async def test_get_nodes(index, vs, mode):
    got = await call(vs, mode, "get_nodes", ["n4", "missing", "n1"])
    assert [n.node_id for n in got] == ["n4", "n1"]
    assert got[1].metadata == METADATA["n1"] and got[1].text == TEXTS["n1"]
    assert np.allclose(got[1].embedding, vs.store.get("n1", "li")[0].vector)
    got = await call(vs, mode, "get_nodes", filters=filters(F("topic", "pets", "!=")))
    assert {n.node_id for n in got} == {"n3", "n5", "n6"}
    got = await call(vs, mode, "get_nodes", ["n1", "n3", "n5"], filters=filters(F("topic", "pets", "!=")))
    assert [n.node_id for n in got] == ["n3", "n5"]
    assert {n.node_id for n in await call(vs, mode, "get_nodes")} == ALL
    assert await call(vs, mode, "get_nodes", []) == []


async def test_delete_by_ref_doc_id(index, vs, mode):
    assert await call(vs, mode, "delete", "d1") is None
    await call(vs, mode, "delete", "no-such-doc")
    assert set(vs.store.read_columns("li").ids) == ALL - {"n1", "n2"}
    hits = await retrieve(index, mode, "cat", similarity_top_k=10)
    assert {h.node.node_id for h in hits} == ALL - {"n1", "n2"}


async def test_index_delete_ref_doc_goes_through_the_store(index, vs, mode):
    if mode == "async":
        await index.adelete_ref_doc("d3")
    else:
        index.delete_ref_doc("d3")
    assert set(vs.store.read_columns("li").ids) == ALL - {"n4", "n5"}


async def test_delete_nodes(index, vs, mode):
    await call(vs, mode, "delete_nodes", ["n1", "missing"])
    assert set(vs.store.read_columns("li").ids) == ALL - {"n1"}
    await call(vs, mode, "delete_nodes", filters=filters(F("topic", "finance")))
    assert set(vs.store.read_columns("li").ids) == {"n2", "n4", "n5"}
    await call(vs, mode, "delete_nodes", ["n2", "n5"], filters=filters(F("topic", "pets")))  # both: the intersection
    assert set(vs.store.read_columns("li").ids) == {"n4", "n5"}
    await call(vs, mode, "delete_nodes")  # neither: nothing
    await call(vs, mode, "delete_nodes", [])
    assert set(vs.store.read_columns("li").ids) == {"n4", "n5"}


async def test_clear(index, vs, mode):
    await call(vs, mode, "clear")
    assert vs.store.exist_workspace("li") and vs.store.count("li") == 0
    assert await retrieve(index, mode, "cat", similarity_top_k=5) == []
    await call(vs, mode, "clear")


async def test_before_the_first_write_the_workspace_is_empty(backend_store, mode):
    vs = VecbookVectorStore(backend_store, "later")
    q = VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=3)
    result = await call(vs, mode, "query", q)
    assert result.nodes == [] and result.ids == [] and result.similarities == []
    assert await call(vs, mode, "get_nodes", ["x"]) == []
    assert await call(vs, mode, "get_nodes") == []
    await call(vs, mode, "delete", "d1")
    await call(vs, mode, "delete_nodes", ["x"])
    await call(vs, mode, "clear")
    assert not backend_store.exist_workspace("later")
    node = TextNode(id_="x", text="hello", embedding=[1.0, 0.0, 0.0])
    assert await call(vs, mode, "add", [node]) == ["x"]
    assert backend_store.get("x", "later")[0].vector.shape == (3,)


# ---- MMR -------------------------------------------------------------------------------------


async def test_mmr(backend_store, mode):
    vs = VecbookVectorStore(backend_store, "mmr")
    index = VectorStoreIndex.from_vector_store(vs, embed_model=embed_model())
    index.insert_nodes([
        TextNode(id_="a", text="language models predict the next token", metadata={"topic": "ai"}),
        TextNode(id_="b", text="language models predict the next token again", metadata={"topic": "ai"}),
        TextNode(id_="c", text="language models and bread", metadata={"topic": "food"}),
        TextNode(id_="d", text="bread rises because yeast makes gas", metadata={"topic": "food"}),
    ])
    query = "language models predict the next token"
    similar = await retrieve(index, mode, query, similarity_top_k=2)
    assert {h.node.node_id for h in similar} == {"a", "b"}
    diverse = await retrieve(index, mode, query, similarity_top_k=2, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 0.2})
    assert diverse[0].node.node_id == "a" and diverse[1].node.node_id not in {"a", "b"}
    assert diverse[0].score == pytest.approx(similar[0].score, abs=1e-5)  # similarities, not MMR scores
    # mmr_threshold 1: plain similarity order
    same = await retrieve(index, mode, query, similarity_top_k=2, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 1.0})
    assert [h.node.node_id for h in same] == [h.node.node_id for h in similar]
    # the filter applies to the candidates; mmr_prefetch_k bounds them
    food = await retrieve(index, mode, query, similarity_top_k=2, vector_store_query_mode="mmr", filters=filters(F("topic", "food")))
    assert {h.node.node_id for h in food} == {"c", "d"}
    one = await retrieve(index, mode, query, similarity_top_k=2, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_prefetch_k": 2, "mmr_threshold": 0.0})
    assert {h.node.node_id for h in one} == {"a", "b"}


# ---- documents end to end, errors, async, offline ------------------------------------------------


async def test_documents_through_an_ingestion_pipeline(backend_store, mode):
    """from_documents splits with LlamaIndex's SentenceSplitter (tokenizer files bundled: no download)."""
    vs = VecbookVectorStore(backend_store, "docs")
    documents = [
        Document(text="Cats purr. Cats sleep a lot. " * 20, doc_id="cats", metadata={"kind": "animal"}),
        Document(text="Markets move. Bonds yield. " * 20, doc_id="markets", metadata={"kind": "finance"}),
    ]
    context = StorageContext.from_defaults(vector_store=vs)
    index = VectorStoreIndex.from_documents(documents, storage_context=context, embed_model=embed_model(), use_async=mode == "async")
    assert backend_store.count("docs") >= 2
    hits = await retrieve(index, mode, "cats purr", similarity_top_k=3, filters=filters(F("kind", "animal")))
    assert hits and all(h.node.ref_doc_id == "cats" and h.node.metadata == {"kind": "animal"} for h in hits)
    await call(vs, mode, "delete", "cats")
    assert {n.ref_doc_id for n in await call(vs, mode, "get_nodes")} == {"markets"}


def test_mock_embedding_works_too(tmp_path):
    index = VectorStoreIndex.from_vector_store(VecbookVectorStore(MemoryVectorStore(store_dir=str(tmp_path))), embed_model=MockEmbedding(embed_dim=8))
    index.insert_nodes([TextNode(id_="a", text="x", metadata={"k": 1}), TextNode(id_="b", text="y", metadata={"k": 2})])
    hits = index.as_retriever(similarity_top_k=5, filters=filters(F("k", 1, "!="))).retrieve("z")
    assert [h.node.node_id for h in hits] == ["b"] and hits[0].score == pytest.approx(1.0)


async def test_unsupported_queries_are_refused(index, vs, mode):
    emb = embed_model().get_query_embedding("cat")
    with pytest.raises(ValueError, match="query modes"):
        await call(vs, mode, "query", VectorStoreQuery(query_embedding=emb, mode="hybrid"))
    with pytest.raises(ValueError, match="query_embedding"):
        await call(vs, mode, "query", VectorStoreQuery(query_embedding=None))
    with pytest.raises(TypeError, match="bogus"):
        await call(vs, mode, "query", VectorStoreQuery(query_embedding=emb), bogus=1)
    with pytest.raises(FilterError, match="TEXT_MATCH"):
        await retrieve(index, mode, "cat", filters=filters(F("topic", "pe", "text_match")))
    with pytest.raises(ValueError):
        await call(vs, mode, "query", VectorStoreQuery(query_embedding=emb, similarity_top_k=-1))
    assert (await call(vs, mode, "query", VectorStoreQuery(query_embedding=emb, similarity_top_k=0))).ids == []




# ---- the extra, embeddings, async ------------------------------------------------------------


def test_missing_llama_index_names_the_extra(monkeypatch):
    assert_import_names_the_extra(monkeypatch, "llama_index", "vecbook.integrations.llamaindex", "llamaindex")


def test_import_vecbook_does_not_import_llama_index():
    assert not imported_with_vecbook("llama_index")


async def test_vecbook_model_as_llamaindex_embedding():
    model = HashEmbeddingModel(dimensions=DIMS)
    emb = VecbookEmbedding(model)
    assert emb.model is model and emb.model_name == model.model_name
    assert np.allclose(emb.get_query_embedding("bread"), model.get_embeddings("bread"))
    assert np.allclose(emb.get_text_embedding_batch(["a b", "c"]), model.get_embeddings(["a b", "c"]))
    assert np.allclose(await emb.aget_query_embedding("bread"), model.get_embeddings("bread"))
    assert np.allclose(await emb.aget_text_embedding_batch(["a b", "c"]), model.get_embeddings(["a b", "c"]))
    with pytest.raises(TypeError):
        VecbookEmbedding(object())  # type: ignore[arg-type]


def test_nodes_written_without_llamaindex_come_back_as_text_nodes(tmp_path):
    store = MemoryVectorStore(embedding_model=HashEmbeddingModel(dimensions=DIMS), store_dir=str(tmp_path))
    store.create_workspace("plain")
    store.insert([VectorNode(unique_id="p1", content="plain cat", metadata={"topic": "pets", "score": 7})], "plain")
    vs = VecbookVectorStore(store, "plain")
    index = VectorStoreIndex.from_vector_store(vs, embed_model=VecbookEmbedding(store.embedding_model))
    hits = index.as_retriever(similarity_top_k=1, filters=filters(F("topic", "pets"))).retrieve("cat")
    assert hits[0].node.node_id == "p1" and hits[0].node.text == "plain cat"
    assert hits[0].node.metadata == {"topic": "pets", "score": 7} and 0 < hits[0].score <= 1
    # a node without an embedding is embedded by the store's model
    vs.add([TextNode(id_="p2", text="another cat")])
    assert np.allclose(store.get("p2", "plain")[0].vector, store.embedding_model.get_embeddings("another cat"))


def test_constructor_and_pydantic(tmp_path):
    store = MemoryVectorStore(store_dir=str(tmp_path))
    vs = VecbookVectorStore(store, "w")
    assert vs.client is store and vs.store is store and vs.workspace_id == "w" and vs.stores_text
    assert VecbookVectorStore.class_name() == "VecbookVectorStore" and "workspace_id='w'" in repr(vs)
    with pytest.raises(TypeError):
        VecbookVectorStore(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        VecbookVectorStore(store, "")


async def test_async_methods_call_vecbook_async_methods(tmp_path, monkeypatch):
    store = MemoryVectorStore(store_dir=str(tmp_path))
    vs = VecbookVectorStore(store)
    refuse_sync(monkeypatch, store, "insert", "delete", "get", "search", "search_by_vector", "create_workspace", "read_columns",
                "iter_workspace_nodes")
    loop = asyncio.get_running_loop()
    seen = []
    original = store.async_search_by_vector

    async def spy(*args, **kwargs):
        seen.append(asyncio.get_running_loop())
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "async_search_by_vector", spy)
    index = VectorStoreIndex.from_vector_store(vs, embed_model=embed_model())
    await index.ainsert_nodes(nodes())
    assert len(await index.as_retriever(similarity_top_k=2, filters=filters(F("topic", "pets"))).aretrieve("cat")) == 2
    assert seen == [loop]  # on the caller's loop, not vecbook's background loop
    q = VectorStoreQuery(query_embedding=embed_model().get_query_embedding("cat"), similarity_top_k=2, mode="mmr")
    assert len((await vs.aquery(q)).ids) == 2
    assert [n.node_id for n in await vs.aget_nodes(["n2"])] == ["n2"]
    await vs.adelete("d1")
    await vs.adelete_nodes(["n3"])
    await vs.adelete_nodes(filters=filters(F("year", 2024)))
    assert [n.node_id for n in await vs.aget_nodes()] == ["n6"]
    await vs.aclear()
    assert await store.async_count("llamaindex") == 0


def test_runs_offline(tmp_path):
    """Importing LlamaIndex, splitting documents (tokenizer, NLTK data) and querying open no socket."""
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from llama_index.core import Document, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.utils import get_tokenizer, globals_helper
        from vecbook import HashEmbeddingModel, MemoryVectorStore
        from vecbook.integrations.llamaindex import VecbookEmbedding, VecbookVectorStore

        assert get_tokenizer()("hello world")
        assert globals_helper.stopwords and globals_helper.punkt_tokenizer
        vs = VecbookVectorStore(MemoryVectorStore(store_dir=%r))
        docs = [Document(text="Cats purr. Dogs bark. " * 50, doc_id="d")]
        index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=vs),
                                                embed_model=VecbookEmbedding(HashEmbeddingModel(dimensions=64)),
                                                transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0)])
        hits = index.as_retriever(similarity_top_k=2).retrieve("cats")
        assert len(hits) == 2
        print("ok")
        """
        % str(tmp_path)
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("NLTK_DATA", "TIKTOKEN_CACHE_DIR")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_an_index_reopens_from_a_persisted_store(tmp_path):
    """With the local backend the nodes outlive the process's objects: a new store and index find them."""
    from vecbook import LocalVectorStore

    with LocalVectorStore(store_dir=str(tmp_path / "local")) as store:
        index = VectorStoreIndex.from_vector_store(VecbookVectorStore(store, "kept"), embed_model=embed_model())
        index.insert_nodes(nodes())
    with LocalVectorStore(store_dir=str(tmp_path / "local")) as store:
        index = VectorStoreIndex.from_vector_store(VecbookVectorStore(store, "kept"), embed_model=embed_model())
        hits = index.as_retriever(similarity_top_k=3, filters=filters(F("topic", "pets", "!="))).retrieve("stock markets")
        assert hits[0].node.node_id == "n3" and {h.node.node_id for h in hits} == {"n3", "n5", "n6"}
        assert all(h.node.metadata == METADATA[h.node.node_id] and h.node.ref_doc_id == DOC_OF[h.node.node_id] for h in hits)

