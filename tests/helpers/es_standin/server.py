"""The HTTP side: a threaded HTTP/1.1 server on loopback speaking Elasticsearch's REST conventions.

Every response carries ``X-Elastic-Product: Elasticsearch``; requests must use
JSON / NDJSON media types, and the versioned ones the official clients send
(``application/vnd.elasticsearch+json; compatible-with=9``) are checked like
ES checks them. The whole cluster is guarded by one lock, so requests apply
one at a time.
"""

from __future__ import annotations

import base64
import gzip
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..loopback import HttpServer, LoopbackServer
from . import codec
from .api import VERSION, Api, Call
from .errors import EsError
from .faults import Faults
from .indices import Cluster

_MEDIA = re.compile(r"application/(?:vnd\.elasticsearch\+)?(json|x-ndjson)\s*(?:;\s*(?:compatible-with=(\d+)|charset=[\w-]+)\s*)*$", re.I)


@dataclass
class RecordedCall:
    method: str
    path: str
    params: dict[str, str]
    body: Any  # parsed JSON, a list for NDJSON, None when empty (or when bodies are not recorded)
    status: int = 0
    seconds: float = 0.0  # time spent answering, under the cluster lock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        standin = self.server.standin
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        record = RecordedCall(self.command, split.path, params, _parsed(body) if standin.record_bodies else None)
        fault = standin.faults.request_fault(self.command, split.path)
        if fault is not None and fault.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            standin.requests.append(record)
            return
        compat = None
        try:
            compat = self._check_headers(bool(body.strip()))
            self._check_auth(standin)
            if fault is not None:
                raise EsError(fault.status, fault.type, fault.reason)
            with standin.lock:
                started = time.perf_counter()
                status, payload = standin.api.dispatch(Call(self.command, split.path, params, body))
                record.seconds = time.perf_counter() - started
        except EsError as exc:
            status, payload = exc.status, exc.body()
        except Exception as exc:  # a stand-in bug: answer 500 and keep it for the tests to see
            standin.internal_errors.append(exc)
            status, payload = 500, EsError(500, "standin_internal_error", repr(exc)).body()
        record.status = status
        standin.requests.append(record)
        self._respond(status, payload, compat)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(chunks)
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def _check_headers(self, has_body: bool) -> str | None:
        versions = {}
        for name in ("Content-Type", "Accept"):
            value = self.headers.get(name)
            if not value or (name == "Accept" and value.strip() in ("*/*", "")):
                continue
            match = _MEDIA.match(value.strip())
            if match is None:
                if name == "Content-Type" and has_body:
                    raise EsError(406, "media_type_header_exception", f"Content-Type header [{value}] is not supported")
                continue
            if match.group(2):
                versions[name] = match.group(2)
        if versions:
            if len(set(versions.values())) > 1 or (has_body and len(versions) == 1):
                raise EsError(400, "media_type_header_exception", "Invalid media-type value on headers [Accept, Content-Type]: A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match.")
            version = next(iter(versions.values()))
            major = int(VERSION.split(".")[0])
            if int(version) not in (major - 1, major):
                raise EsError(400, "media_type_header_exception", f"Invalid media-type value on headers [Accept, Content-Type]: compatible-with={version} is not supported by a {VERSION} node")
            return version
        return None

    def _check_auth(self, standin: EsStandin) -> None:
        if standin.credentials is None:
            return
        if self.headers.get("Authorization") not in standin.credentials:
            raise EsError(401, "security_exception", f"missing authentication credentials for REST request [{self.path.split('?')[0]}]")

    def _respond(self, status: int, payload: Any, compat: str | None) -> None:
        data = b"" if payload is None else codec.dumps(payload)
        self.send_response(status)
        self.send_header("X-elastic-product", "Elasticsearch")
        kind = f"application/vnd.elasticsearch+json;compatible-with={compat}" if compat else "application/json"
        self.send_header("Content-Type", kind)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _parsed(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return codec.loads(body)
    except ValueError:
        try:
            return [codec.loads(line) for line in body.decode().splitlines() if line.strip()]
        except ValueError:
            return body


class EsStandin(LoopbackServer):
    """An in-process Elasticsearch stand-in on ``http://127.0.0.1:<port>``.

    ``faults`` injects failures, ``requests`` records what was asked,
    ``internal_errors`` collects stand-in bugs (a test should find it empty).
    Pass ``basic_auth=(user, password)`` and/or ``api_key`` to require credentials.
    """

    thread_name = "es-standin"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, basic_auth: tuple[str, str] | None = None, api_key: str | None = None, record_bodies: bool = True):
        self.cluster = Cluster()
        self.faults = Faults()
        self.api = Api(self.cluster, self.faults)
        self.lock = threading.RLock()
        self.requests: list[RecordedCall] = []
        self.internal_errors: list[BaseException] = []
        self.record_bodies = record_bodies
        credentials = set()
        if basic_auth is not None:
            credentials.add("Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode())
        if api_key is not None:
            credentials.add(f"ApiKey {api_key}")
        self.credentials = credentials or None
        super().__init__(host, port, _Handler)
