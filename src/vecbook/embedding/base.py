"""BaseEmbeddingModel: batching, bounded concurrency, retries and a cache around one method.

A model implements :meth:`BaseEmbeddingModel.embed_batch` (sync) and, where it
has a native async client, may also override :meth:`async_embed_batch`. Everything
else (splitting into batches, running at most ``max_concurrency`` batches at a
time, retrying transient failures with exponential backoff, caching vectors by
content hash, checking what came back) lives here, written once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._aio import PerLoop, sync_twin, to_thread
from ..errors import EmbeddingError, RetryableEmbeddingError, VecbookError
from ..node import VectorNode

__all__ = ["BaseEmbeddingModel"]

log = logging.getLogger("vecbook.embedding")


class _VectorCache:
    """A bounded, thread-safe LRU map from text hash to vector."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
            return vector

    def put(self, key: bytes, vector: np.ndarray) -> None:
        if self.max_items <= 0:
            return
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class BaseEmbeddingModel(ABC):
    """Turns texts into float32 vectors of a fixed length.

    Args:
        model_name: the model's name, shown in reprs and used by remote APIs.
        dimensions: the vector length, if known before the first call.
        batch_size: texts per call to :meth:`embed_batch`.
        max_concurrency: batches in flight at once on the async path.
        max_retries: retries of a batch after a transient failure.
        retry_base_delay / retry_max_delay: exponential backoff bounds, in seconds.
        cache_size: vectors kept by content hash (0 turns the cache off).
    """

    def __init__(
        self,
        model_name: str = "",
        dimensions: int | None = None,
        *,
        batch_size: int = 32,
        max_concurrency: int = 4,
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        cache_size: int = 100_000,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.model_name = model_name
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.cache = _VectorCache(cache_size)
        self._semaphores: PerLoop[asyncio.Semaphore] = PerLoop(lambda: asyncio.Semaphore(self.max_concurrency))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r}, dimensions={self.dimensions})"

    # ---- what a model implements -------------------------------------------------

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> Sequence[Sequence[float]] | np.ndarray:
        """Embed one batch of texts; one vector per text, in order.

        Raise :class:`RetryableEmbeddingError` for failures worth retrying.
        """

    async def async_embed_batch(self, texts: list[str]) -> Sequence[Sequence[float]] | np.ndarray:
        """Async twin of :meth:`embed_batch`; by default runs it in a worker thread."""
        return await to_thread(self.embed_batch, texts)

    # ---- public API ----------------------------------------------------------------

    async def async_get_embeddings(self, texts: str | Sequence[str]) -> np.ndarray:
        """Embed one text (→ 1-D array) or several (→ 2-D array, one row per text)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                raise EmbeddingError(f"text #{i} is {type(text).__name__}, not str")
        matrix = await self._embed_all(batch)
        return matrix[0] if single else matrix

    get_embeddings = sync_twin(async_get_embeddings)
    get_embeddings_async = async_get_embeddings  # flowllm's name

    async def async_get_node_embeddings(self, nodes: VectorNode | Sequence[VectorNode]) -> list[VectorNode]:
        """Fill in ``vector`` for nodes that have none; nodes with a vector are left alone."""
        node_list = [nodes] if isinstance(nodes, VectorNode) else list(nodes)
        todo = [node for node in node_list if node.vector is None]
        if todo:
            matrix = await self._embed_all([node.content for node in todo])
            for node, vector in zip(todo, matrix):
                node.vector = vector
        return node_list

    get_node_embeddings = sync_twin(async_get_node_embeddings)
    get_node_embeddings_async = async_get_node_embeddings  # flowllm's name

    # ---- machinery -----------------------------------------------------------------

    async def _embed_all(self, texts: list[str]) -> np.ndarray:
        keys = [self.cache.key(text) for text in texts]
        found: dict[bytes, np.ndarray] = {}
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key in found or key in missing:
                continue
            vector = self.cache.get(key)
            if vector is None:
                missing[key] = text
            else:
                found[key] = vector
        if missing:
            todo = list(missing.items())
            batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
            results = await _gather_or_cancel([self._embed_with_retries([t for _, t in b]) for b in batches])
            for batch, matrix in zip(batches, results):
                for (key, _), vector in zip(batch, matrix):
                    found[key] = vector
                    self.cache.put(key, vector)
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    async def _embed_with_retries(self, texts: list[str]) -> np.ndarray:
        attempt = 0
        while True:
            try:
                async with self._semaphores.get():  # one per loop, gone with its loop
                    raw = await self.async_embed_batch(texts)
                return self._check(raw, len(texts))
            except RetryableEmbeddingError as exc:
                if attempt >= self.max_retries:
                    raise EmbeddingError(
                        f"{self.model_name or type(self).__name__}: gave up after {attempt + 1} attempts: {exc}"
                    ) from exc
                delay = self._backoff(attempt, exc.retry_after)
                log.warning("embedding batch failed (%s); retry %d/%d in %.2fs", exc, attempt + 1, self.max_retries, delay)
                await asyncio.sleep(delay)
                attempt += 1
            except VecbookError:
                raise
            except Exception as exc:  # a model's own bug or a non-transient API error
                raise EmbeddingError(f"{self.model_name or type(self).__name__}: {type(exc).__name__}: {exc}") from exc

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.retry_max_delay, self.retry_base_delay * (2**attempt))
        delay = delay / 2 + random.uniform(0, delay / 2)
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), self.retry_max_delay))
        return delay

    def _check(self, raw: Any, expected_rows: int) -> np.ndarray:
        try:
            matrix = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise RetryableEmbeddingError(f"malformed embedding reply: {exc}") from exc
        if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
            raise RetryableEmbeddingError(
                f"malformed embedding reply: expected {expected_rows} vectors, got shape {matrix.shape}"
            )
        if self.dimensions is None:
            self.dimensions = int(matrix.shape[1])
        elif matrix.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"model returned {matrix.shape[1]}-d vectors but dimensions={self.dimensions}"
            )
        if not np.isfinite(matrix).all():
            raise EmbeddingError("model returned NaN or infinite values")
        return matrix


async def _gather_or_cancel(coros: list) -> list:
    """Run coroutines concurrently; on the first failure cancel the rest and re-raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
