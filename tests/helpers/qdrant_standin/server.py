"""The HTTP side: a threaded HTTP/1.1 server on loopback speaking Qdrant's REST conventions.

Successful answers are ``{"result": ..., "status": "ok", "time": <s>}``, errors
``{"status": {"error": "..."}, "time": ...}`` with Qdrant's status (errors.py). With
an API key configured, a request without ``api-key`` (or ``Authorization: Bearer``) is
a 401 and one with a wrong key a 403, each with Qdrant's plain-text message
(src/common/auth in Qdrant). A ``read_only_api_key`` may only read: GET, and the POSTs
Qdrant lists as reads (src/actix/auth.rs ``READ_ONLY_POST_PATTERNS``, plus query and
facet); anything else is a 403. The engine is guarded by one lock, so requests apply
one at a time.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..loopback import HttpServer, LoopbackServer
from .api import Api, Call
from .errors import QdrantError

_READ_POSTS = re.compile(r"^/collections/[^/]+/(points(/count|/scroll|/query|/query/batch|/query/groups|/search|/search/batch|/recommend|/recommend/batch|/discover|/discover/batch)?|facet)$")


@dataclass
class RecordedCall:
    method: str
    path: str
    params: dict[str, str]
    body: Any  # parsed JSON, None when empty
    status: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        standin = self.server.standin
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        recorded = standin.record and len(body) <= standin.max_request_size
        record = RecordedCall(self.command, split.path, params, _parsed(body) if recorded else None)
        denied = self._denied(standin.api_key, standin.read_only_api_key, split.path)
        if denied is not None:
            record.status = denied[0]
            self._keep(standin, record)
            self._respond(denied[0], denied[1].encode(), "text/plain; charset=utf-8")
            return
        try:
            if len(body) > standin.max_request_size:  # actix's JsonConfig limit (service.max_request_size_mb)
                raise QdrantError(400, f"JSON payload ({len(body)} bytes) is larger than allowed (limit: {standin.max_request_size} bytes).")
            time.sleep(standin.take_delay(self.command, split.path, slow_work=True))
            with standin.lock:
                status, payload = standin.api.dispatch(Call(self.command, split.path, params, body))
        except QdrantError as exc:
            status, payload = exc.status, exc.body()
        except Exception as exc:  # a stand-in bug: answer 500 and keep it for the tests to see
            standin.internal_errors.append(exc)
            status, payload = 500, QdrantError(500, f"Service internal error: {exc!r}").body()
        record.status = status
        self._keep(standin, record)
        pause = standin.take_delay(self.command, split.path)
        if pause:  # a slow server: the request is done, the answer comes late
            time.sleep(pause)
        self._respond(status, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _keep(standin: QdrantStandin, record: RecordedCall) -> None:
        if standin.record:
            standin.requests.append(record)

    def _denied(self, api_key: str | None, read_only_key: str | None, path: str) -> tuple[int, str] | None:
        if api_key is None and read_only_key is None:
            return None
        given = self.headers.get("api-key")
        if given is None and (self.headers.get("Authorization") or "").startswith("Bearer "):
            given = self.headers["Authorization"][len("Bearer ") :]
        if given is None:
            return 401, "Must provide an API key or an Authorization bearer token"
        if given == api_key:
            return None
        if given == read_only_key:
            if self.command == "GET" or (self.command == "POST" and _READ_POSTS.match(path)):
                return None
            return 403, "Forbidden: Write access is denied with a read-only API key"
        return 403, "Invalid API key or JWT"

    def _respond(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _parsed(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


class QdrantStandin(LoopbackServer):
    """An in-process Qdrant stand-in on ``http://127.0.0.1:<port>``.

    ``requests`` records what was asked, ``internal_errors`` collects stand-in bugs
    (a test should find it empty); ``reset()`` drops every collection. ``lag``: seconds
    before a ``wait=false`` update applies (api.py). ``max_request_size_mb``: a bigger
    body is refused with a 400, as Qdrant's ``service.max_request_size_mb`` (default 32)
    makes it refuse it. ``strict``: strict mode's refusal of filters on unindexed keys
    (strict.py), as on Qdrant Cloud.
    """

    thread_name = "qdrant-standin"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        read_only_api_key: str | None = None,
        lag: float = 0.0,
        max_request_size_mb: float = 32,
        strict: bool = False,
    ):
        self.lag, self.strict = lag, strict
        self.max_request_size = int(max_request_size_mb * 1024 * 1024)
        self.api = Api(lag=lag, strict=strict)
        self.api_key = api_key
        self.read_only_api_key = read_only_api_key
        self.lock = threading.RLock()
        self.requests: list[RecordedCall] = []
        self._delays: list[list] = []
        self.record = True  # keep each request in ``requests`` (a long-running stand-in turns it off)
        self.internal_errors: list[BaseException] = []
        super().__init__(host, port, _Handler)

    def delay(self, seconds: float, method: str, path_suffix: str, times: int = 1, slow_work: bool = False) -> None:
        """Answer the next ``times`` requests ``method`` on a path ending with ``path_suffix`` ``seconds``
        late, after doing them (as a busy server finishes what a client gave up waiting for); with
        ``slow_work``, do them ``seconds`` late (as a server building an index before it answers
        ``wait=true``: meanwhile other requests do not see it)."""
        with self.lock:
            self._delays.append([seconds, method, path_suffix, times, slow_work])

    def take_delay(self, method: str, path: str, slow_work: bool = False) -> float:
        with self.lock:
            for entry in self._delays:
                if entry[1] == method and path.endswith(entry[2]) and entry[3] > 0 and entry[4] == slow_work:
                    entry[3] -= 1
                    return entry[0]
        return 0.0

    def reset(self) -> None:
        with self.lock:
            self.api = Api(lag=self.lag, strict=self.strict)
            self.requests.clear()
            self._delays.clear()
