"""Fixtures of the integration tests: vecbook stores of the embedded backends."""

from __future__ import annotations

import pytest

from tests.backends import make_store

# The embedded backends (no server): LangChain's standard suite runs on each of them.
EMBEDDED = ["memory", "local", "chroma", "qdrant"]


@pytest.fixture(params=EMBEDDED)
def backend_store(request, tmp_path):
    """An empty vecbook store of each embedded backend (no embedding model); closed afterwards."""
    store = make_store(request.param, tmp_path, request)
    yield store
    store.close()
