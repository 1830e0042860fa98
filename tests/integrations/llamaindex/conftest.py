"""Fixtures of the LlamaIndex tests: a vecbook store of each backend, sync or async, and an index over the corpus."""

from __future__ import annotations

import pytest

from tests.backends import make_store
from tests.integrations.conftest import EMBEDDED


@pytest.fixture(params=[*EMBEDDED, "elasticsearch"])
def backend_store(request, tmp_path):
    """An empty vecbook store of each embedded backend, and Elasticsearch through its in-process stand-in."""
    store = make_store(request.param, tmp_path, request)
    yield store
    store.close()


@pytest.fixture(params=["sync", "async"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def vs(backend_store):
    from vecbook.integrations.llamaindex import VecbookVectorStore

    return VecbookVectorStore(backend_store, "li")


@pytest.fixture
def index(vs):
    """A VectorStoreIndex over the vecbook store, holding the corpus's nodes (inserted through LlamaIndex)."""
    from llama_index.core import VectorStoreIndex

    from tests.integrations.llamaindex.corpus import embed_model, nodes

    idx = VectorStoreIndex.from_vector_store(vs, embed_model=embed_model())
    idx.insert_nodes(nodes())
    return idx


