"""Fixtures of the conformance suite: every test runs on every backend, sync and async."""

from __future__ import annotations

from typing import Any

import pytest

import vecbook
from vecbook import HashEmbeddingModel

from tests.backends import make_store, only, variants


class Api:
    """Calls a store's sync or async methods behind one awaitable interface."""

    def __init__(self, store: vecbook.BaseVectorStore, mode: str):
        self.store = store
        self.mode = mode

    def __getattr__(self, name: str):
        if self.mode == "async":
            return getattr(self.store, f"async_{name}")
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any):
            return method(*args, **kwargs)

        return call

    async def nodes(self, workspace_id: str, **kwargs: Any) -> list:
        if self.mode == "async":
            return [n async for n in self.store.async_iter_workspace_nodes(workspace_id, **kwargs)]
        return list(self.store.iter_workspace_nodes(workspace_id, **kwargs))


class CountingModel(HashEmbeddingModel):
    """A hash model that counts the texts it embeds and can be told to fail."""

    def __init__(self, dimensions: int = 16):
        super().__init__(dimensions=dimensions, max_retries=0)
        self.embedded: list[str] = []
        self.fail = False

    def embed_batch(self, texts):
        if self.fail:
            raise RuntimeError("embedding service down")
        self.embedded.extend(texts)
        return super().embed_batch(texts)


def pytest_collection_modifyitems(config, items):
    """Leave out the combinations a variant does not have (``tests.backends.only``)."""
    rules, keep, left_out = only(), [], []
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        allowed = rules.get(params.get("backend"), {})
        (left_out if any(k in params and params[k] not in v for k, v in allowed.items()) else keep).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep


@pytest.fixture(params=list(variants()))
def backend(request) -> str:
    return request.param


@pytest.fixture(params=["sync", "async"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def model() -> CountingModel:
    return CountingModel(16)


@pytest.fixture
async def make(backend, tmp_path, model, request):
    """make(**kwargs) -> an Api over a fresh store of the backend under test."""
    apis: list[Api] = []

    def factory(mode: str = "sync", **kwargs: Any) -> Api:
        kwargs.setdefault("embedding_model", model)
        api = Api(make_store(backend, tmp_path, request, **kwargs), mode)
        apis.append(api)
        return api

    yield factory
    for api in apis:  # async clients belong to this test's loop: close them on it
        if api.mode == "async":
            await api.store.async_close()
        else:
            api.store.close()


@pytest.fixture
def api(make, mode) -> Api:
    return make(mode)


@pytest.fixture
async def ws(api) -> str:
    await api.create_workspace("ws")
    return "ws"
