"""Qdrant clients and their errors.

On a server, one ``AsyncQdrantClient`` per running event loop. Local mode is pure
Python and holds a file lock on its folder, so one sync client per folder (or per
``:memory:`` store) is shared by every loop and store of the process, called one
request at a time through :func:`vecbook._aio.to_thread`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
from pydantic_core import PydanticSerializationError
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ..._aio import PerLoop, to_thread
from ...errors import BackendUnavailableError, StoreInUseError, ValidationError, WorkspaceNotFoundError

__all__ = ["RemoteClients", "LocalClient", "server_args", "translate_error"]


class RemoteClients:
    """One AsyncQdrantClient per running event loop."""

    def __init__(self, factory: Callable[[], Any]):
        self._clients = PerLoop(factory)

    async def call(self, method: str, /, **kwargs: Any) -> Any:
        return await getattr(self._clients.get(), method)(**kwargs)

    async def close(self) -> None:
        current = asyncio.get_running_loop()
        for loop, client in self._clients.pop_all():
            if loop is current:
                await client.close()
            elif loop.is_running():  # another thread's loop: close it there, without waiting
                asyncio.run_coroutine_threadsafe(client.close(), loop)


class LocalClient:
    """A sync local-mode client: one per folder in this process, one call at a time.

    ``info`` caches each collection's (vector size, distance): every store of this
    process on the folder shares this object, and no other process can open it.
    """

    _open: dict[str, LocalClient] = {}
    _guard = threading.Lock()

    @classmethod
    def forget_all(cls) -> None:
        """In a forked child: the parent's clients are not ours (their stores are refused there)."""
        cls._open, cls._guard = {}, threading.Lock()

    def __init__(self, path: str | None):
        self.path = path
        try:
            self.client = QdrantClient(location=":memory:") if path is None else QdrantClient(path=path)
        except RuntimeError as exc:
            if "already accessed by another instance" not in str(exc):
                raise
            raise StoreInUseError(
                f"{path} is open in another process; Qdrant's local mode cannot be shared between processes: "
                "run a Qdrant server and open the store with url= or host="
            ) from None
        self.lock = threading.Lock()
        self.refs = 1
        self.info: dict[str, tuple[int | None, str | None]] = {}  # collection -> (dims, distance)

    @classmethod
    def open(cls, path: str | None) -> LocalClient:
        if path is None:
            return cls(None)
        key = os.path.realpath(path)
        with cls._guard:  # re-running a notebook cell must not trip Qdrant's folder lock
            holder = cls._open.get(key)
            if holder is not None:
                holder.refs += 1
                return holder
            holder = cls._open[key] = cls(key)
            return holder

    async def call(self, method: str, /, **kwargs: Any) -> Any:
        return await to_thread(self._locked, getattr(self.client, method), kwargs)

    def _locked(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        with self.lock:
            return fn(**kwargs)

    async def close(self) -> None:
        with self._guard:
            self.refs -= 1
            if self.refs > 0:
                return
            if self.path is not None:
                self._open.pop(self.path, None)
        await to_thread(self.client.close)


def server_args(host, port, url, api_key, prefer_grpc, grpc_port) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """What repr shows, the "host:port" errors name, and the client's arguments."""
    api_key = api_key if api_key is not None else os.getenv("FLOW_QDRANT_API_KEY") or None
    if url is not None:
        parts = urlsplit(url)  # shown without any user:password@ or query
        mode: dict[str, Any] = {"url": f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")}
        host, port = parts.hostname, parts.port or 6333
        args: dict[str, Any] = {"url": url}
    else:
        host = host or os.getenv("FLOW_QDRANT_HOST") or "localhost"
        port = int(port if port is not None else os.getenv("FLOW_QDRANT_PORT") or 6333)
        mode = {"host": host, "port": port}
        args = {"host": host, "port": port}
    if prefer_grpc:
        mode["grpc_port"] = port = grpc_port
    args.update(api_key=api_key, prefer_grpc=prefer_grpc, grpc_port=grpc_port)
    return mode, f"{host}:{port}", args


def translate_error(exc: Exception, ws: str | None, where: str) -> Exception:
    """Our error for a client's: a missing collection, an unreachable server, text JSON cannot carry;
    else ``exc`` itself."""
    if ws is not None and _is_not_found(exc):
        return WorkspaceNotFoundError(ws)
    if isinstance(exc, PydanticSerializationError) and "surrogates not allowed" in str(exc):
        return ValidationError(
            "a string holds a lone surrogate (such as '\\udc80', left by decoding a file name with "
            "errors='surrogateescape'), which a Qdrant server cannot receive (its API carries UTF-8 JSON): "
            "the call changed nothing. Encode such text first (e.g. with errors='backslashreplace')"
        )
    reason = _unreachable_reason(exc)
    if reason is not None:
        return BackendUnavailableError(f"Qdrant server at {where} is not reachable: {reason}")
    return exc


def _is_not_found(exc: Exception) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.NOT_FOUND
    return isinstance(exc, ValueError) and str(exc).startswith("Collection ") and str(exc).endswith(" not found")


def _unreachable_reason(exc: Exception) -> str | None:
    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, (httpx.TransportError, ConnectionError, TimeoutError)):
        return f"{type(source).__name__}: {source}".rstrip(": ")
    if isinstance(source, grpc.RpcError) and source.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"gRPC {source.code().name}"
    return None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=LocalClient.forget_all)
