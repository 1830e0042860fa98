"""OpenAICompatibleEmbeddingModel: any server that speaks OpenAI's ``/v1/embeddings``.

OpenAI, Azure, DashScope, Zhipu, Jina, SiliconFlow, vLLM, TEI, Ollama and friends
all accept the same request. This model sends it with the official ``openai``
client (``pip install 'vecbook[openai]'``); batching, concurrency, retries and
the cache come from :class:`~vecbook.embedding.base.BaseEmbeddingModel`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import json
import logging
import math
import os
import re
import threading
import time
from typing import Any

import numpy as np

from .._aio import PerLoop
from ..errors import EmbeddingError, MissingDependencyError, RetryableEmbeddingError
from .base import BaseEmbeddingModel

__all__ = ["OpenAICompatibleEmbeddingModel", "accepts_dimensions"]

log = logging.getLogger("vecbook.embedding")

KEY_ENV_VARS = ("FLOW_EMBEDDING_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENV_VARS = ("FLOW_EMBEDDING_BASE_URL", "OPENAI_BASE_URL")

# Models documented to accept `dimensions`, matched on the name after any "org/" prefix.
_ACCEPTS_DIMENSIONS = re.compile(
    r"text-embedding-3-.+"  # OpenAI (and Azure deployments named after the model)
    r"|text-embedding-v[34]"  # Alibaba DashScope / Model Studio
    r"|embedding-3"  # Zhipu BigModel
    r"|jina-embeddings-v[34]"  # Jina AI
    r"|qwen3-embedding-.+"  # Qwen3-Embedding (SiliconFlow, vLLM with matryoshka config)
)
# How servers word a rejected `dimensions` (vLLM speaks of "matryoshka representation").
_DIMENSIONS_WORDS = re.compile(r"dimension|matryoshka", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)


def accepts_dimensions(model_name: str) -> bool:
    """Whether ``model_name`` is known to accept the ``dimensions`` request field."""
    return bool(_ACCEPTS_DIMENSIONS.fullmatch(model_name.rsplit("/", 1)[-1].lower()))


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise MissingDependencyError("openai", "openai", feature="OpenAICompatibleEmbeddingModel") from exc
    return openai


class _Secret:
    """Holds an API key; prints as ``'***'`` so the key stays out of reprs and dumps."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value

    def reveal(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("an API key is not pickled")


class _DimensionsRejected(Exception):
    """The server refused the ``dimensions`` field (internal: triggers the fallback)."""


def _first_set(explicit: str | None, env_vars: tuple[str, ...]) -> str | None:
    if explicit is not None:
        return explicit
    for name in env_vars:
        value = os.environ.get(name)
        if value:
            return value
    return None


class OpenAICompatibleEmbeddingModel(BaseEmbeddingModel):
    """Embeddings from an OpenAI-compatible HTTP API.

    Args:
        model_name: the model to ask for (default: DashScope's ``text-embedding-v4``).
        dimensions: the vector length wanted; sent as ``dimensions`` when the model accepts it.
        batch_size: texts per request (DashScope takes at most 10).
        base_url: the API root, e.g. ``https://dashscope.aliyuncs.com/compatible-mode/v1``;
            else ``FLOW_EMBEDDING_BASE_URL``, else ``OPENAI_BASE_URL``, else OpenAI's.
        api_key: else ``FLOW_EMBEDDING_API_KEY``, else ``OPENAI_API_KEY`` (empty variables
            count as unset). ``api_key=""`` sends no key at all, for local servers. With
            no key anywhere, the first request raises :class:`EmbeddingError`.
        send_dimensions: ``None`` sends ``dimensions`` only to models known to accept it
            (see :func:`accepts_dimensions`) and stops if the server rejects it;
            ``True``/``False`` always/never send it.
        timeout: seconds per request before it counts as failed (and is retried).
        encoding_format: ``"base64"`` (compact, the default) or ``"float"``.
        **kwargs: passed to :class:`BaseEmbeddingModel` (``retry_base_delay``, ``cache_size``...).
    """

    def __init__(
        self,
        model_name: str = "text-embedding-v4",
        dimensions: int | None = None,
        batch_size: int = 10,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        send_dimensions: bool | None = None,
        timeout: float = 60.0,
        max_concurrency: int = 4,
        max_retries: int = 5,
        encoding_format: str = "base64",
        **kwargs: Any,
    ):
        if encoding_format not in ("float", "base64"):
            raise ValueError(f"encoding_format must be 'float' or 'base64', not {encoding_format!r}")
        _openai()  # fail early, with the pip command, if the extra is missing
        super().__init__(
            model_name,
            dimensions,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            max_retries=max_retries,
            **kwargs,
        )
        self.base_url = _first_set(base_url, BASE_URL_ENV_VARS)
        self._api_key = _Secret(_first_set(api_key, KEY_ENV_VARS))
        self.send_dimensions = send_dimensions
        self.timeout = timeout
        self.encoding_format = encoding_format
        # What the caller asked for; the base fills in `dimensions` from the first reply.
        self._requested_dimensions = dimensions
        self._dimensions_rejected = False
        self._lock = threading.Lock()
        self._sync_client: Any = None
        self._async_clients: PerLoop[Any] = PerLoop(lambda: self._make_client(_openai().AsyncOpenAI))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, dimensions={self.dimensions}, "
            f"base_url={self.base_url!r})"
        )

    # ---- one batch ---------------------------------------------------------------------

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch with the sync client (one request, two if ``dimensions`` is refused)."""
        dimensions = self._dimensions_to_send()
        result = self._request_sync(texts, dimensions)
        if isinstance(result, _DimensionsRejected):
            self._stop_sending_dimensions(str(result))
            result = self._request_sync(texts, None)
        return self._unwrap(result)

    async def async_embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch with this event loop's async client."""
        dimensions = self._dimensions_to_send()
        result = await self._request_async(texts, dimensions)
        if isinstance(result, _DimensionsRejected):
            self._stop_sending_dimensions(str(result))
            result = await self._request_async(texts, None)
        return self._unwrap(result)

    # The requests return errors rather than raise them, so that the error raised later
    # carries no implicit __context__ (the client's exception may quote the key).

    def _request_sync(self, texts: list[str], dimensions: int | None) -> np.ndarray | Exception:
        client = self._get_sync_client()
        try:
            raw = client.embeddings.with_raw_response.create(**self._params(texts, dimensions))
        except _openai().OpenAIError as exc:
            return self._translate(exc, dimensions)
        return self._parse(raw.http_response.content, len(texts), dimensions)

    async def _request_async(self, texts: list[str], dimensions: int | None) -> np.ndarray | Exception:
        client = self._async_clients.get()
        try:
            raw = await client.embeddings.with_raw_response.create(**self._params(texts, dimensions))
        except _openai().OpenAIError as exc:
            return self._translate(exc, dimensions)
        return self._parse(raw.http_response.content, len(texts), dimensions)

    @staticmethod
    def _unwrap(result: np.ndarray | Exception) -> np.ndarray:
        if isinstance(result, Exception):
            raise result
        return result

    def _params(self, texts: list[str], dimensions: int | None) -> dict[str, Any]:
        # encoding_format is always explicit: the client then leaves base64 strings alone
        # (it would otherwise ask for base64 and decode into Python float lists).
        params: dict[str, Any] = {"input": texts, "model": self.model_name, "encoding_format": self.encoding_format}
        if dimensions is not None:
            params["dimensions"] = dimensions
        if self._api_key.reveal() == "":
            params["extra_headers"] = {"Authorization": _openai().Omit()}  # see _make_client
        return params

    # ---- dimensions ----------------------------------------------------------------------

    def _dimensions_to_send(self) -> int | None:
        wanted = self._requested_dimensions
        if wanted is None or self.send_dimensions is False:
            return None
        if self.send_dimensions:
            return wanted
        return None if self._dimensions_rejected or not accepts_dimensions(self.model_name) else wanted

    def _stop_sending_dimensions(self, server_message: str) -> None:
        with self._lock:
            if self._dimensions_rejected:
                return
            self._dimensions_rejected = True
        log.warning(
            "%s: the server rejected dimensions=%s (%s); sending requests without it from now on",
            self.model_name, self._requested_dimensions, server_message,
        )

    # ---- replies -------------------------------------------------------------------------

    def _parse(self, content: bytes, expected: int, dimensions_sent: int | None) -> np.ndarray:
        """Turn a 200 reply's body into an (n, d) float32 matrix, rows in input order."""
        try:
            payload = json.loads(content)
        except ValueError:
            raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: not JSON") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: no 'data' list")
        if len(data) != expected:
            raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: {len(data)} vectors for {expected} texts")
        rows: list[np.ndarray | None] = [None] * expected
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if type(index) is not int or not 0 <= index < expected or rows[index] is not None:
                raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: bad or repeated index {index!r}")
            rows[index] = self._decode(item.get("embedding"))
        if len({row.shape[0] for row in rows}) != 1:  # type: ignore[union-attr]
            raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: vectors of different lengths")
        matrix = np.stack(rows)  # type: ignore[arg-type]
        self._check_unrequested_width(matrix.shape[1], dimensions_sent)
        return matrix

    def _decode(self, embedding: Any) -> np.ndarray:
        try:
            if isinstance(embedding, str):
                raw = base64.b64decode(embedding, validate=True)
                if len(raw) % 4:
                    raise ValueError(f"{len(raw)} bytes is not a whole number of float32s")
                vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            else:
                vector = np.asarray(embedding, dtype=np.float32)
        except (TypeError, ValueError, binascii.Error) as exc:
            raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: bad embedding ({exc})") from None
        if vector.ndim != 1 or vector.size == 0:
            raise RetryableEmbeddingError(f"{self.model_name}: malformed reply: embedding is not a vector")
        return vector

    def _check_unrequested_width(self, width: int, dimensions_sent: int | None) -> None:
        wanted = self._requested_dimensions
        if dimensions_sent is not None or wanted is None or width == wanted:
            return
        if self._dimensions_rejected:
            why = "the server rejected the `dimensions` field"
        elif self.send_dimensions is False:
            why = "`dimensions` is not sent (send_dimensions=False)"
        else:
            why = "`dimensions` is not sent, as this model is not known to accept it (send_dimensions=True forces it)"
        raise EmbeddingError(
            f"{self.model_name} returns {width}-d vectors, not the dimensions={wanted} asked for; "
            f"{why}. Use dimensions={width} or dimensions=None."
        )

    # ---- errors ------------------------------------------------------------------------------

    def _translate(self, exc: Exception, dimensions_sent: int | None) -> Exception:
        error = self._map_error(exc, dimensions_sent)
        # Chain the client's error for debugging unless its text quotes the key.
        error.__cause__ = exc if self._scrub(str(exc)) == str(exc) else None
        error.__suppress_context__ = True
        return error

    def _map_error(self, exc: Exception, dimensions_sent: int | None) -> Exception:
        openai = _openai()
        name = self.model_name
        if isinstance(exc, openai.APITimeoutError):
            return RetryableEmbeddingError(f"{name}: no reply within {self.timeout}s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return RetryableEmbeddingError(f"{name}: cannot reach {self._endpoint()}: {self._scrub(str(cause))}")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = self._scrub(_server_message(exc))
            text = f"{name}: HTTP {status} from {self._endpoint()}: {message}"
            if status in (408, 429) or status >= 500:
                return RetryableEmbeddingError(text, retry_after=_retry_after(exc.response.headers))
            if dimensions_sent is not None and status in (400, 422) and _DIMENSIONS_WORDS.search(message):
                if self.send_dimensions is None:
                    return _DimensionsRejected(message)
                text += " (the server refuses `dimensions`; pass send_dimensions=False or leave it None)"
            if status in (401, 403):
                text += " (check the API key: api_key=..., FLOW_EMBEDDING_API_KEY or OPENAI_API_KEY)"
            return EmbeddingError(text)
        if isinstance(exc, openai.APIResponseValidationError):
            return RetryableEmbeddingError(f"{name}: malformed reply: {self._scrub(str(exc))}")
        return EmbeddingError(f"{name}: {type(exc).__name__}: {self._scrub(str(exc))}")

    def _scrub(self, text: str) -> str:
        key = self._api_key.reveal()
        if key:
            text = text.replace(key, "***")
        return _BEARER.sub("Bearer ***", text)

    def _endpoint(self) -> str:
        return (self.base_url or "https://api.openai.com/v1").rstrip("/") + "/embeddings"

    # ---- clients -------------------------------------------------------------------------------

    def _make_client(self, client_class: Any) -> Any:
        key = self._api_key.reveal()
        if key is None:
            raise EmbeddingError(
                f"{self.model_name}: no API key; pass api_key=..., or set FLOW_EMBEDDING_API_KEY "
                "or OPENAI_API_KEY (api_key='' sends none, for servers that need none)"
            )
        return client_class(
            # The client insists on a key: "" gets a placeholder whose header _params omits.
            api_key=key or "unused",
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,  # one retry policy, vecbook's
        )

    def _get_sync_client(self) -> Any:
        with self._lock:
            if self._sync_client is None:
                self._sync_client = self._make_client(_openai().OpenAI)
            return self._sync_client

    def close(self) -> None:
        """Release the HTTP clients; the model makes new ones if it is used again."""
        with self._lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()
        for loop, async_client in self._async_clients.pop_all():
            _close_on_loop(loop, async_client)

    async def async_close(self) -> None:
        """Async twin of :meth:`close`: awaits the clients of this loop and of running loops."""
        with self._lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()
        current = asyncio.get_running_loop()
        for loop, async_client in self._async_clients.pop_all():
            if loop is current:
                await async_client.close()
            elif loop.is_running():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(async_client.close(), loop))
            else:
                _close_on_loop(loop, async_client)


def _close_on_loop(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    """Close an async client on the loop it belongs to, if that loop is still alive."""
    if loop.is_closed():
        return  # its connections went with the loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if loop is running:
            loop.create_task(client.close())  # cannot wait for our own loop here
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=10)
        elif running is None:
            loop.run_until_complete(client.close())
    except Exception as exc:  # closing is best effort
        log.debug("could not close an async embedding client: %s", type(exc).__name__)


def _server_message(exc: Any) -> str:
    """The human part of an error reply: OpenAI's {"error": {"message": ...}} or close."""
    body = exc.body
    for _ in range(2):
        if isinstance(body, dict) and "error" in body and "message" not in body:
            body = body["error"]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return str(exc.message)


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        return max(0.0, seconds) if math.isfinite(seconds) else None
    value = headers.get("retry-after")
    try:
        when = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return None if when is None else max(0.0, when.timestamp() - time.time())
