"""OpenAICompatibleEmbeddingModel against a real local HTTP server (no mocks of openai)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import sys
import time

import numpy as np
import pytest

from vecbook.testing import EmbeddingServer, Fault
from vecbook.embedding.openai import OpenAICompatibleEmbeddingModel, accepts_dimensions
from vecbook.errors import EmbeddingError, MissingDependencyError, RetryableEmbeddingError

ENV_VARS = ("FLOW_EMBEDDING_API_KEY", "FLOW_EMBEDDING_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")
DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
TEXTS = [f"text number {i} about {word}" for i, word in enumerate("apples pears plums figs kiwis limes dates".split())]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with EmbeddingServer(native_dimensions=64) as running:
        yield running


@pytest.fixture
def make_model(server):
    """A model factory aimed at ``server``, with fast retries; closes what it made."""
    made = []

    def make(**overrides) -> OpenAICompatibleEmbeddingModel:
        kwargs = dict(
            model_name="text-embedding-v4",
            dimensions=64,
            base_url=server.base_url,
            api_key="",
            timeout=5.0,
            retry_base_delay=0.001,
            retry_max_delay=0.01,
        )
        kwargs.update(overrides)
        model = OpenAICompatibleEmbeddingModel(**kwargs)
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


# ---- replies --------------------------------------------------------------------------


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_vectors_equal_the_servers_exactly(server, make_model, encoding_format):
    vectors = make_model(encoding_format=encoding_format).get_embeddings(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 64)
    np.testing.assert_array_equal(vectors, server.expected(TEXTS, 64))
    assert {r.encoding_format for r in server.requests} == {encoding_format}


def test_float_and_base64_agree(make_model):
    as_float = make_model(encoding_format="float").get_embeddings(TEXTS)
    as_base64 = make_model(encoding_format="base64").get_embeddings(TEXTS)
    np.testing.assert_array_equal(as_float, as_base64)


def test_reply_items_are_put_in_index_order(server, make_model):
    server.reverse_order = True
    np.testing.assert_array_equal(make_model().get_embeddings(TEXTS), server.expected(TEXTS, 64))


def test_single_text_gives_one_vector(server, make_model):
    vector = make_model().get_embeddings("just one")
    assert vector.shape == (64,)
    np.testing.assert_array_equal(vector, server.expected(["just one"], 64)[0])


# ---- batching, concurrency, cache -------------------------------------------------------------


@pytest.mark.parametrize("n, batch_size", [(23, 5), (10, 10), (1, 32), (7, 1)])
def test_batches_of_at_most_batch_size(server, make_model, n, batch_size):
    texts = [f"distinct text {i}" for i in range(n)]
    vectors = make_model(batch_size=batch_size).get_embeddings(texts)
    assert server.request_count == math.ceil(n / batch_size)
    assert all(len(r.inputs) <= batch_size for r in server.requests)
    assert sorted(t for r in server.requests for t in r.inputs) == sorted(texts)
    np.testing.assert_array_equal(vectors, server.expected(texts, 64))


def test_default_batch_size_is_ten(server, make_model):
    make_model().get_embeddings([f"t{i}" for i in range(25)])
    assert sorted(len(r.inputs) for r in server.requests) == [5, 10, 10]


async def test_async_concurrency_is_bounded_and_used(server, make_model):
    server.latency = 0.05
    model = make_model(batch_size=1, max_concurrency=3)
    texts = [f"concurrent {i}" for i in range(12)]
    vectors = await model.async_get_embeddings(texts)
    await model.async_close()
    np.testing.assert_array_equal(vectors, server.expected(texts, 64))
    assert server.request_count == 12
    assert server.max_in_flight == 3


def test_cache_saves_requests(server, make_model):
    model = make_model()
    first = model.get_embeddings("the same text")
    second = model.get_embeddings("the same text")
    assert server.request_count == 1
    np.testing.assert_array_equal(first, second)
    model.get_embeddings(["dup", "dup", "the same text"])
    assert server.request_count == 2 and server.requests[-1].inputs == ["dup"]


async def test_sync_and_async_give_the_same_vectors(make_model):
    sync_model, async_model = make_model(cache_size=0), make_model(cache_size=0)
    from_sync = sync_model.get_embeddings(TEXTS)
    from_async = await async_model.async_get_embeddings(TEXTS)
    np.testing.assert_array_equal(from_sync, from_async)
    np.testing.assert_array_equal(sync_model.embed_batch(TEXTS[:3]), await async_model.async_embed_batch(TEXTS[:3]))
    await async_model.async_close()


async def test_close_releases_clients_and_model_still_works(server, make_model):
    model = make_model(cache_size=0)
    await model.async_get_embeddings("a")
    model.embed_batch(["b"])
    await model.async_close()
    assert model._sync_client is None and not model._async_clients.pop_all()
    await model.async_get_embeddings("a")
    model.close()
    assert server.request_count == 3


# ---- retries ---------------------------------------------------------------------------------

MISSING_INDEX = json.dumps({"object": "list", "data": [{"object": "embedding", "embedding": [0.5] * 64}]}).encode()
BAD_BASE64 = json.dumps({"data": [{"object": "embedding", "index": 0, "embedding": "@@not base64@@"}]}).encode()
NOT_A_LIST = json.dumps({"object": "list", "data": {"oops": 1}}).encode()


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limit(retry_after="0"),
        Fault.server_error(500),
        Fault.server_error(503),
        Fault.slow(1.0),  # past the 0.2 s timeout below
        Fault.malformed(),
        Fault.malformed(b"<html>bad gateway</html>"),
        Fault.malformed(NOT_A_LIST),
        Fault.malformed(MISSING_INDEX),
        Fault.malformed(BAD_BASE64),
        Fault.wrong_count(),
    ],
    ids=["429", "500", "503", "timeout", "bad-json", "html", "not-a-list", "no-index", "bad-base64", "wrong-count"],
)
def test_transient_failures_are_retried(server, make_model, fault):
    server.fail_next(fault)
    vectors = make_model(timeout=0.2).get_embeddings(["only one"])
    assert server.request_count == 2
    np.testing.assert_array_equal(vectors, server.expected(["only one"], 64))


@pytest.mark.parametrize(
    "fault", [Fault.rate_limit(retry_after="0"), Fault.server_error(500), Fault.malformed(), Fault.slow(1.0)]
)
async def test_transient_failures_are_retried_async(server, make_model, fault):
    server.fail_next(fault, fault)
    model = make_model(timeout=0.2)
    vectors = await model.async_get_embeddings(["only one"])
    await model.async_close()
    assert server.request_count == 3
    np.testing.assert_array_equal(vectors, server.expected(["only one"], 64)[0:1])


def test_retry_after_header_is_honoured(server, make_model):
    model = make_model(retry_max_delay=5.0)
    server.fail_next(Fault.rate_limit(retry_after="0.3"))
    with pytest.raises(RetryableEmbeddingError) as caught:
        model.embed_batch(["x"])  # one attempt, no retry loop
    assert caught.value.retry_after == pytest.approx(0.3)

    server.fail_next(Fault.rate_limit(retry_after="0.3"))
    started = time.perf_counter()
    model.get_embeddings("y")
    assert time.perf_counter() - started >= 0.3
    assert server.request_count == 3


def test_persistent_failure_gives_up_after_max_retries_plus_one(server, make_model):
    server.fail_next(*[Fault.server_error(500)] * 10)
    with pytest.raises(EmbeddingError) as caught:
        make_model(max_retries=2).get_embeddings("doomed")
    assert not isinstance(caught.value, RetryableEmbeddingError)
    assert "3 attempts" in str(caught.value)
    assert server.request_count == 3


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_not_retried(server, make_model, status):
    server.fail_next(Fault.bad_request("input is too long", status=status))
    with pytest.raises(EmbeddingError, match="input is too long") as caught:
        make_model().get_embeddings("x")
    assert not isinstance(caught.value, RetryableEmbeddingError)
    assert server.request_count == 1


def test_wrong_key_is_not_retried(server, make_model):
    server.api_key = "right-key"
    with pytest.raises(EmbeddingError, match="401"):
        make_model(api_key="wrong-key").get_embeddings("x")
    assert server.request_count == 1


def test_unreachable_server_is_retried_then_reported(make_model):
    with pytest.raises(EmbeddingError, match="cannot reach"):
        make_model(base_url=DEAD_URL, max_retries=1).get_embeddings("x")


# ---- dimensions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, accepted",
    [
        ("text-embedding-3-small", True),
        ("text-embedding-3-large", True),
        ("text-embedding-v4", True),
        ("text-embedding-v3", True),
        ("embedding-3", True),
        ("jina-embeddings-v3", True),
        ("Qwen/Qwen3-Embedding-8B", True),
        ("text-embedding-ada-002", False),
        ("text-embedding-v2", False),
        ("BAAI/bge-m3", False),
        ("nomic-embed-text", False),
    ],
)
def test_models_known_to_accept_dimensions(name, accepted):
    assert accepts_dimensions(name) is accepted


@pytest.mark.parametrize(
    "model_name, dimensions, send_dimensions, sent",
    [
        ("text-embedding-v4", 64, None, 64),
        ("text-embedding-3-small", 64, None, 64),
        ("text-embedding-v4", None, None, None),
        ("bge-m3", 64, None, None),
        ("bge-m3", 64, True, 64),
        ("text-embedding-v4", 64, False, None),
    ],
)
def test_dimensions_sent_only_when_accepted(server, make_model, model_name, dimensions, send_dimensions, sent):
    model = make_model(model_name=model_name, dimensions=dimensions, send_dimensions=send_dimensions)
    model.get_embeddings(["a", "b"])
    model.get_embeddings(["c"])  # the dimension learnt from the first reply is not sent either
    assert [r.dimensions for r in server.requests] == [sent, sent]
    assert model.dimensions == 64


def test_unsent_dimensions_that_differ_from_the_model_are_explained(server, make_model):
    with pytest.raises(EmbeddingError, match=r"returns 64-d vectors, not the dimensions=32.*send_dimensions=True"):
        make_model(model_name="bge-m3", dimensions=32).get_embeddings("x")
    assert server.request_count == 1


def test_rejected_dimensions_fall_back_once(server, make_model, caplog):
    server.reject_dimensions = True
    model = make_model()
    with caplog.at_level(logging.WARNING, logger="vecbook"):
        first = model.get_embeddings("one")
        model.get_embeddings("two")
    assert [r.dimensions for r in server.requests] == [64, None, None]
    np.testing.assert_array_equal(first, server.expected(["one"], 64)[0])
    warnings = [r for r in caplog.records if "rejected dimensions" in r.getMessage()]
    assert len(warnings) == 1


async def test_rejected_dimensions_fall_back_under_concurrency(server, make_model, caplog):
    server.reject_dimensions = True
    server.latency = 0.02
    model = make_model(batch_size=1, max_concurrency=4)
    with caplog.at_level(logging.WARNING, logger="vecbook"):
        vectors = await model.async_get_embeddings(TEXTS)
    await model.async_close()
    np.testing.assert_array_equal(vectors, server.expected(TEXTS, 64))
    assert sum(r.dimensions is None for r in server.requests) == len(TEXTS)
    assert len([r for r in caplog.records if "rejected dimensions" in r.getMessage()]) == 1


def test_rejected_dimensions_with_other_native_length_raise(make_model):
    with EmbeddingServer(native_dimensions=128, reject_dimensions=True) as other:
        model = make_model(base_url=other.base_url)
        with pytest.raises(EmbeddingError, match=r"returns 128-d vectors.*rejected the `dimensions`"):
            model.get_embeddings("x")
        assert [r.dimensions for r in other.requests] == [64, None]


def test_forced_dimensions_rejected_is_an_error(server, make_model):
    server.reject_dimensions = True
    with pytest.raises(EmbeddingError, match="send_dimensions=False"):
        make_model(send_dimensions=True).get_embeddings("x")
    assert server.request_count == 1


# ---- configuration: keys and URLs ----------------------------------------------------------------


def test_flow_env_vars_beat_openai_ones(server, monkeypatch):
    monkeypatch.setenv("FLOW_EMBEDDING_API_KEY", "flow-key")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.setenv("FLOW_EMBEDDING_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD_URL)
    model = OpenAICompatibleEmbeddingModel(dimensions=64, model_name="text-embedding-v4")
    model.get_embeddings("x")
    model.close()
    assert server.requests[0].authorization == "Bearer flow-key"


def test_openai_env_vars_are_the_fallback(server, monkeypatch):
    monkeypatch.setenv("FLOW_EMBEDDING_API_KEY", "")  # empty counts as unset
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    model = OpenAICompatibleEmbeddingModel(dimensions=64, model_name="text-embedding-v4", batch_size=32)
    model.get_embeddings("x")
    model.close()
    assert server.requests[0].authorization == "Bearer openai-key"


def test_explicit_arguments_beat_env_vars(server, monkeypatch):
    monkeypatch.setenv("FLOW_EMBEDDING_API_KEY", "flow-key")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.setenv("FLOW_EMBEDDING_BASE_URL", DEAD_URL)
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD_URL)
    model = OpenAICompatibleEmbeddingModel(dimensions=64, base_url=server.base_url, api_key="explicit-key")
    model.get_embeddings("x")
    model.close()
    assert server.requests[0].authorization == "Bearer explicit-key"


def test_empty_key_sends_no_authorization(server, make_model):
    make_model(api_key="").get_embeddings("x")
    assert server.requests[0].authorization is None


def test_missing_key_fails_clearly_on_first_use(server):
    model = OpenAICompatibleEmbeddingModel(dimensions=64, base_url=server.base_url)  # constructing is fine
    with pytest.raises(EmbeddingError, match="no API key.*FLOW_EMBEDDING_API_KEY.*OPENAI_API_KEY"):
        model.get_embeddings("x")
    assert server.request_count == 0


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="encoding_format"):
        OpenAICompatibleEmbeddingModel(encoding_format="binary")


def test_missing_openai_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` fail
    with pytest.raises(MissingDependencyError, match=r"vecbook\[openai\]"):
        OpenAICompatibleEmbeddingModel()


# ---- the key stays secret --------------------------------------------------------------------------

SECRET = "sk-TOPSECRET-0123456789abcdef"


def _texts_of(error: BaseException) -> list[str]:
    texts = []
    while error is not None:
        texts += [str(error), repr(error)]
        error = error.__cause__ or error.__context__
    return texts


def test_key_never_shows(server, make_model, caplog, monkeypatch):
    for name in ("", "vecbook", "openai", "httpx", "httpx2", "httpcore", "httpcore2"):
        caplog.set_level(logging.DEBUG, logger=name)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.api_key = SECRET
    model = OpenAICompatibleEmbeddingModel(dimensions=64, base_url=server.base_url, retry_base_delay=0.001)
    server.fail_next(Fault.server_error(500), Fault.rate_limit("0"))
    model.get_embeddings("works after retries")
    seen = [repr(model), str(model), repr(vars(model)), *(r.getMessage() for r in caplog.records)]

    server.api_key = "another-key"  # the server now echoes our (wrong) key in its 401
    with pytest.raises(EmbeddingError) as caught:
        model.get_embeddings("fails")
    seen += _texts_of(caught.value) + [r.getMessage() for r in caplog.records]
    model.close()
    assert any("retry" in r.getMessage() for r in caplog.records)  # the logs were captured
    assert "***" in str(caught.value)
    assert not [text for text in seen if SECRET in text]


def test_secret_hides_in_reprs(make_model):
    model = make_model(api_key=SECRET)
    assert repr(model._api_key) == "'***'" and str(model._api_key) == "'***'"
    assert SECRET not in repr(vars(model))
    with pytest.raises(TypeError):
        vars(model._api_key)


def test_key_is_scrubbed_from_error_text(make_model):
    model = make_model(api_key=SECRET)
    assert model._scrub(f"bad key {SECRET}; Authorization: Bearer abc.def") == "bad key ***; Authorization: Bearer ***"


# ---- odds and ends ---------------------------------------------------------------------------------


def test_base64_decoding_is_little_endian_float32(make_model):
    vector = np.array([1.5, -2.25, 3.0e-7], dtype="<f4")
    payload = json.dumps({"data": [{"index": 0, "embedding": base64.b64encode(vector.tobytes()).decode()}]})
    np.testing.assert_array_equal(make_model(dimensions=None)._parse(payload.encode(), 1, None), vector[None])


async def test_each_event_loop_gets_its_own_client(make_model):
    model = make_model(cache_size=0)

    async def client_and_vector(text):
        return model._async_clients.get(), await model.async_get_embeddings(text)

    async def in_another_loop():
        result = await client_and_vector("there")
        await model.async_close()  # closes this loop's client, and the test loop's on its loop
        return result

    here, _ = await client_and_vector("here")
    there, vector = await asyncio.to_thread(asyncio.run, in_another_loop())
    assert here is not there and vector.shape == (64,)
    assert not model._async_clients.pop_all()
