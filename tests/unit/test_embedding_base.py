"""BaseEmbeddingModel: batching, the cache, retries with backoff, bounded concurrency, reply checks."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from vecbook import BaseEmbeddingModel, EmbeddingError, HashEmbeddingModel, RetryableEmbeddingError


class Scripted(BaseEmbeddingModel):
    """Fails as told, counts calls, and measures how many batches run at once."""

    def __init__(self, failures=(), delay=0.0, **kwargs):
        kwargs.setdefault("retry_base_delay", 0.01)
        super().__init__("scripted", dimensions=4, **kwargs)
        self.failures = list(failures)
        self.calls: list[list[str]] = []
        self.delay = delay
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()

    def embed_batch(self, texts):
        with self._lock:
            self.calls.append(list(texts))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay)
            if self.failures:
                failure = self.failures.pop(0)
                if failure is not None:
                    raise failure
            return [[len(t), 1.0, 0.0, float(i)] for i, t in enumerate(texts)]
        finally:
            with self._lock:
                self.in_flight -= 1


def test_single_text_gives_a_vector_and_lists_give_matrices():
    model = HashEmbeddingModel(dimensions=12)
    assert model.get_embeddings("hello").shape == (12,)
    assert model.get_embeddings(["a", "b", "c"]).shape == (3, 12)
    assert model.get_embeddings([]).shape == (0, 12)
    np.testing.assert_array_equal(model.get_embeddings("same text"), HashEmbeddingModel(12).get_embeddings("same text"))


def test_batches_respect_batch_size_and_keep_order():
    model = Scripted(batch_size=3)
    texts = [f"t{i}" * (i + 1) for i in range(10)]
    out = model.get_embeddings(texts)
    assert [len(c) for c in model.calls] == [3, 3, 3, 1]
    np.testing.assert_array_equal(out[:, 0], [len(t) for t in texts])


def test_cache_skips_known_texts_and_duplicates():
    model = Scripted(batch_size=10)
    model.get_embeddings(["a", "b", "a"])
    model.get_embeddings(["b", "c"])
    assert model.calls == [["a", "b"], ["c"]]


@pytest.mark.parametrize("failure", [RetryableEmbeddingError("429 Too Many Requests"), RetryableEmbeddingError("503")])
def test_transient_failures_are_retried(failure):
    model = Scripted(failures=[failure, failure])
    assert model.get_embeddings(["x"]).shape == (1, 4)
    assert len(model.calls) == 3


def test_backoff_grows_and_honours_retry_after():
    model = Scripted(retry_base_delay=0.05, retry_max_delay=10)
    delays = [model._backoff(attempt, None) for attempt in range(4)]
    for attempt, delay in enumerate(delays):
        nominal = 0.05 * 2**attempt
        assert nominal / 2 <= delay <= nominal
    assert model._backoff(0, 2.0) == 2.0
    assert model._backoff(0, 99.0) == 10  # capped


def test_persistent_failure_raises_after_max_retries():
    model = Scripted(failures=[RetryableEmbeddingError("500")] * 10, max_retries=3)
    with pytest.raises(EmbeddingError, match="gave up after 4 attempts"):
        model.get_embeddings(["x"])
    assert len(model.calls) == 4


def test_non_transient_errors_are_not_retried():
    model = Scripted(failures=[ValueError("bad request")])
    with pytest.raises(EmbeddingError, match="bad request"):
        model.get_embeddings(["x"])
    assert len(model.calls) == 1


@pytest.mark.parametrize("reply", [[[1.0, 2.0]], [[1, 2, 3, 4], [1, 2, 3, 4]], [["a", "b", "c", "d"]]])
def test_malformed_replies_are_retried_then_fail(reply):
    class Bad(Scripted):
        def embed_batch(self, texts):
            self.calls.append(texts)
            return reply

    model = Bad(max_retries=1)
    with pytest.raises(EmbeddingError):
        model.get_embeddings(["x"])
    assert len(model.calls) == 2 or reply == [[1.0, 2.0]]


def test_nan_is_refused():
    class NaN(Scripted):
        def embed_batch(self, texts):
            return [[np.nan] * 4 for _ in texts]

    with pytest.raises(EmbeddingError, match="NaN"):
        NaN().get_embeddings(["x"])


async def test_async_concurrency_is_bounded():
    model = Scripted(batch_size=1, max_concurrency=3, delay=0.05)
    out = await model.async_get_embeddings([f"t{i}" for i in range(12)])
    assert out.shape == (12, 4)
    assert model.peak == 3


async def test_failure_cancels_the_other_batches():
    model = Scripted(batch_size=1, max_concurrency=2, delay=0.02, failures=[ValueError("boom")], max_retries=0)
    with pytest.raises(EmbeddingError):
        await model.async_get_embeddings([f"t{i}" for i in range(20)])
    await asyncio.sleep(0.1)
    assert len(model.calls) < 20
