"""A local OpenAI-style embeddings server for tests, docs and benchmarks.

``POST /v1/embeddings`` answers like OpenAI, with vectors that depend only on
the text (:class:`~vecbook.embedding.hashing.HashEmbeddingModel`). The server
records what it was sent and can be told to misbehave::

    with EmbeddingServer(latency=0.05) as server:
        server.fail_next(Fault.rate_limit(retry_after="0.2"), Fault.server_error())
        model = OpenAICompatibleEmbeddingModel(base_url=server.base_url, api_key="")
        ...
        assert server.request_count == 3
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from vecbook.embedding.hashing import HashEmbeddingModel

__all__ = ["EmbeddingServer", "Fault", "RecordedRequest"]


@dataclass
class Fault:
    """How to spoil one request. The default (status 200, no body) answers normally."""

    status: int = 200
    message: str = "injected failure"
    retry_after: str | None = None  # Retry-After header value
    delay: float = 0.0  # extra seconds before answering (past the client's timeout, say)
    body: bytes | None = None  # a raw 200 body instead of the real reply
    drop_vectors: int = 0  # answer with this many vectors too few

    @classmethod
    def rate_limit(cls, retry_after: str | None = "0") -> Fault:
        return cls(status=429, message="rate limit reached", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status=status, message="the server had an error")

    @classmethod
    def slow(cls, delay: float) -> Fault:
        return cls(delay=delay)

    @classmethod
    def malformed(cls, body: bytes = b'{"data": [oops') -> Fault:
        return cls(body=body)

    @classmethod
    def wrong_count(cls, drop: int = 1) -> Fault:
        return cls(drop_vectors=drop)

    @classmethod
    def bad_request(cls, message: str = "invalid input", status: int = 400) -> Fault:
        return cls(status=status, message=message)


@dataclass
class RecordedRequest:
    inputs: list[str]
    model: str | None
    dimensions: int | None  # None when the request did not send it
    encoding_format: str | None
    authorization: str | None


@lru_cache(maxsize=None)
def _hasher(dimensions: int) -> HashEmbeddingModel:
    return HashEmbeddingModel(dimensions)


class EmbeddingServer:
    """A threaded HTTP server on 127.0.0.1 and a free port; use as a context manager.

    Args:
        native_dimensions: vector length when a request sends no ``dimensions``.
        latency: seconds every request waits before answering.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
        reject_dimensions: answer 400 to any request that sends ``dimensions``.
        reverse_order: list the reply's items last index first (clients must sort by index).
    """

    def __init__(
        self,
        *,
        native_dimensions: int = 64,
        latency: float = 0.0,
        api_key: str | None = None,
        reject_dimensions: bool = False,
        reverse_order: bool = False,
    ):
        self.native_dimensions = native_dimensions
        self.latency = latency
        self.api_key = api_key
        self.reject_dimensions = reject_dimensions
        self.reverse_order = reverse_order
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------

    def start(self) -> EmbeddingServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="embedding-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # ---- configuration and records -------------------------------------------------

    def fail_next(self, *faults: Fault) -> None:
        """Spoil the next requests, one fault each, in arrival order."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def reset(self) -> None:
        """Forget recorded requests, pending faults and the in-flight maximum."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.max_in_flight = 0

    def expected(self, texts: list[str], dimensions: int | None = None) -> np.ndarray:
        """The vectors this server answers for ``texts``."""
        return _hasher(dimensions or self.native_dimensions).embed_batch(list(texts))

    # ---- request handling ------------------------------------------------------------

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def handle(self, path: str, authorization: str | None, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, extra headers, JSON body).

        A request that gets as far as the latency takes ``latency`` (plus a slow
        fault's delay) in all: the time spent making the answer is part of it, as
        a real server's response time includes its compute.
        """
        started = time.perf_counter()
        if path.rstrip("/") != "/v1/embeddings":
            return _error(404, f"no route {path}")
        try:
            request = json.loads(body)
            inputs = [request["input"]] if isinstance(request["input"], str) else list(request["input"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "request body is not an embeddings request")
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    inputs=inputs,
                    model=request.get("model"),
                    dimensions=request.get("dimensions"),
                    encoding_format=request.get("encoding_format"),
                    authorization=authorization,
                )
            )
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            presented = (authorization or "").removeprefix("Bearer ")
            # Echo the key like some real servers do, so clients must scrub it.
            return _error(401, f"Incorrect API key provided: {presented}", code="invalid_api_key")
        with self._lock:
            fault = self._faults.popleft() if self._faults else Fault()
        answer = self._answer(request, inputs, fault)
        time.sleep(max(0.0, started + self.latency + fault.delay - time.perf_counter()))
        return answer

    def _answer(self, request: dict, inputs: list[str], fault: Fault) -> tuple[int, dict[str, str], bytes]:
        if fault.status != 200:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return _error(fault.status, fault.message, headers=headers)
        if fault.body is not None:
            return 200, {}, fault.body
        if self.reject_dimensions and "dimensions" in request:
            message = f"model {request.get('model')!r} does not support the dimensions parameter"
            return _error(400, message, param="dimensions")
        return 200, {}, self._reply(request, inputs, fault.drop_vectors)

    def _reply(self, request: dict, inputs: list[str], drop: int) -> bytes:
        vectors = self.expected(inputs, request.get("dimensions"))
        as_base64 = request.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_base64 else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        data = data[: len(data) - drop]
        if self.reverse_order:
            data.reverse()
        tokens = sum(len(text.split()) for text in inputs)
        reply = {
            "object": "list",
            "data": data,
            "model": request.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return json.dumps(reply).encode()


def _error(status: int, message: str, *, headers: dict | None = None, **fields) -> tuple[int, dict[str, str], bytes]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, **fields}}
    return status, headers or {}, json.dumps(body).encode()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: EmbeddingServer

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (timeout) is expected here, not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else every small reply waits ~40 ms for a delayed ACK
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: _HTTPServer

    def do_POST(self) -> None:
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner._enter()
        try:
            status, headers, payload = owner.handle(self.path, self.headers.get("Authorization"), body)
        finally:
            owner._leave()  # before replying, so a client never sees one more in flight than it sent
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client hung up (it timed out)

    def log_message(self, format: str, *args) -> None:
        pass
