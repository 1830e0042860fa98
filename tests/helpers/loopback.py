"""What the in-process stand-in servers share: a threaded HTTP server on loopback, run in a thread.

A stand-in (``es_standin``, ``qdrant_standin``) subclasses :class:`LoopbackServer` with its own
request handler; ``serve_until_stopped`` runs one on its own (their ``__main__``).
"""

from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    standin: Any  # the LoopbackServer its handlers answer for


class LoopbackServer:
    """An HTTP server on ``host:port`` (0: a free port) answering with ``handler``, served from a daemon thread."""

    thread_name = "standin"

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]):
        self._server = HttpServer((host, port), handler)
        self._server.standin = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_until_stopped(server: LoopbackServer) -> None:
    """Run ``server``, print its URL, and stop it on SIGTERM or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(server.url, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
