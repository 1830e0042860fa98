"""API keys and passwords never appear in repr, str, logs, exception messages or dumps."""

from __future__ import annotations

import logging
import traceback

import pytest

import vecbook
from tests.backends import free_port
from vecbook import MemoryVectorStore, VecbookError, VectorNode

SECRET = "sk-TOP-SECRET-4242"


def exposed(*texts: str) -> bool:
    return any(SECRET in text for text in texts)


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_openai_key_never_leaks(tmp_path, all_logs):
    pytest.importorskip("openai")
    from vecbook.testing import EmbeddingServer

    with EmbeddingServer(api_key=SECRET) as server:
        model = vecbook.OpenAICompatibleEmbeddingModel(model_name="m", base_url=server.base_url, api_key=SECRET, max_retries=0)
        store = MemoryVectorStore(embedding_model=model)
        store.create_workspace("w")
        store.insert(VectorNode(unique_id="a", content="hello"), "w")
        assert store.search("hello", "w")[0].unique_id == "a"
        dump = store.dump_workspace("w", path=tmp_path)
        wrong = vecbook.OpenAICompatibleEmbeddingModel(model_name="m", base_url=server.base_url, api_key=SECRET + "-wrong", max_retries=0)
        with pytest.raises(VecbookError) as info:
            wrong.get_embeddings(["x"])
        texts = [repr(model), str(model), repr(store), str(store), error_text(info.value), all_logs.text, open(dump["path"]).read()]
        assert not exposed(*texts)
        model.close()
        wrong.close()


def test_qdrant_api_key_never_leaks(all_logs):
    pytest.importorskip("qdrant_client")
    store = vecbook.QdrantVectorStore(url=f"http://127.0.0.1:{free_port()}", api_key=SECRET)
    with pytest.raises(vecbook.BackendUnavailableError) as info:
        store.list_workspaces()
    assert not exposed(repr(store), str(store), error_text(info.value), all_logs.text)


@pytest.mark.parametrize("auth", ["basic_auth", "api_key"])
def test_elasticsearch_credentials_never_leak(auth, all_logs):
    pytest.importorskip("elasticsearch")
    credentials = {"basic_auth": ("elastic", SECRET)} if auth == "basic_auth" else {"api_key": SECRET}
    store = vecbook.EsVectorStore(hosts=f"http://127.0.0.1:{free_port()}", **credentials)
    with pytest.raises(vecbook.BackendUnavailableError) as info:
        store.list_workspaces()
    assert not exposed(repr(store), str(store), error_text(info.value), all_logs.text)
    store.close()
