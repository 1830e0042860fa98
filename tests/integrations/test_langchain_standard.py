"""LangChain's own standard suite (``VectorStoreIntegrationTests``, sync and async) on the backends.

Run as LangChain ships it: no standard test is overridden (its own
``test_no_overrides_DO_NOT_OVERRIDE`` checks that in each class). One class per
backend variant of the conformance suite (tests/backends): every embedded one
(memory, local, chroma, qdrant in local mode, with the memory/local HNSW index and
qdrant in memory as well) and Elasticsearch through the in-process stand-in.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
standard = pytest.importorskip("langchain_tests.integration_tests")

from vecbook.integrations.langchain import VecbookVectorStore  # noqa: E402

from tests.backends import make_store  # noqa: E402


def _suite(variant: str, name: str) -> type:
    class Suite(standard.VectorStoreIntegrationTests):
        @pytest.fixture
        def vectorstore(self, tmp_path, request):
            """An empty VecbookVectorStore over a fresh store of this variant; the store is closed afterwards."""
            store = make_store(variant, tmp_path, request)
            try:
                yield VecbookVectorStore(store, "langchain", embedding=self.get_embeddings())
            finally:
                store.close()

    Suite.__name__ = Suite.__qualname__ = name
    Suite.variant = variant
    return Suite


TestMemory = _suite("memory", "TestMemory")
TestMemoryHnsw = _suite("memory-hnsw", "TestMemoryHnsw")
TestLocal = _suite("local", "TestLocal")
TestLocalHnsw = _suite("local-hnsw", "TestLocalHnsw")
TestChroma = _suite("chroma", "TestChroma")
TestQdrant = _suite("qdrant", "TestQdrant")
TestQdrantMemory = _suite("qdrant-memory", "TestQdrantMemory")
TestElasticsearchStandin = _suite("elasticsearch", "TestElasticsearchStandin")
