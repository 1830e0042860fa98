"""How a ChromaVectorStore reaches Chroma: clients, collection handles, errors.

Embedded, a store has one ``Conn`` (a ``PersistentClient``), called through
:func:`vecbook._aio.to_thread`. On a server, calls use an ``AsyncHttpClient`` per
event loop, which Chroma pools per ``hash(event loop)`` (see below). Collection handles are kept per client: an operation needs no look-up
first, and a handle gone stale (collection re-created meanwhile) is renewed once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..._aio import PerLoop, to_thread
from ...errors import BackendUnavailableError, WorkspaceNotFoundError
from ..dirlock import FolderLock
from .legacy import side_name

__all__ = ["Conn", "Clients", "http_clients"]


@dataclass
class Conn:
    """A client and the collection handles it opened (one per event loop on a server)."""

    client: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    collections: dict[str, Any] = field(default_factory=dict)
    max_batch: int | None = None
    lists_seen: set[str] = field(default_factory=set)  # workspaces found without vecbook:no_lists
    sides: dict[str, Any] = field(default_factory=dict)  # workspace -> its format-3 shape registry's handle


class Clients:
    """The Chroma clients of one store, and the calls every hook makes through them."""

    def __init__(
        self, chromadb: Any, name: Callable[[str], str], store_dir: str, host: str | None, port: int | None, options: dict,
        connect_timeout: float, request_timeout: float | None,
    ):
        self._chromadb, self.name, self.not_found = chromadb, name, chromadb.errors.NotFoundError
        self.host, self.port, self._options, self._timeout = host, port, options, connect_timeout
        self._request_timeout = request_timeout
        self.server = host is not None
        if self.server:
            self._loops: PerLoop[Conn] = PerLoop(Conn)
        else:
            hint = f"run `chroma run --path {store_dir}` and open the store with host= and port="
            self._folder = FolderLock(store_dir, "Chroma", hint)
            try:
                self.embedded = Conn(client=chromadb.PersistentClient(path=store_dir))
            except BaseException:
                self._folder.release()
                raise

    async def conn(self) -> Conn:
        if not self.server:
            return self.embedded
        conn = self._loops.get()
        if conn.client is None:
            async with conn.lock:
                if conn.client is None:
                    conn.client = await self._connect()
        return conn

    async def _connect(self) -> Any:
        import httpx

        forget_foreign_http_client()
        opening = self._chromadb.AsyncHttpClient(host=self.host, port=self.port, **self._options)
        try:
            client = await asyncio.wait_for(opening, self._timeout)
        except (asyncio.TimeoutError, OSError, httpx.TransportError) as exc:
            raise self.unavailable(exc) from None
        pool = http_clients().get(hash(asyncio.get_running_loop()))
        if pool is not None:  # Chroma sets no timeout at all: a frozen server would block us forever
            pool.timeout = httpx.Timeout(self._request_timeout, connect=self._timeout)
        return client

    def unavailable(self, exc: BaseException) -> BackendUnavailableError:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return BackendUnavailableError(
            f"Chroma server at {self.host}:{self.port} is not reachable ({reason}); is `chroma run --host {self.host} --port {self.port}` running?"
        )

    async def run(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call the client: blocking when embedded or eager (in a worker thread if on a loop), else awaited."""
        if not self.server:
            return await to_thread(fn, **kwargs)
        import httpx

        try:
            return await fn(**kwargs)
        except httpx.TransportError as exc:
            raise self.unavailable(exc) from exc

    async def collection(self, ws: str, fresh: bool = False) -> Any:
        """The handle of workspace ``ws``'s collection (looked up again if ``fresh``)."""
        conn = await self.conn()
        collection = None if fresh else conn.collections.get(ws)
        if collection is None:
            try:
                collection = await self.run(conn.client.get_collection, name=self.name(ws), embedding_function=None)
            except self.not_found:
                conn.collections.pop(ws, None)
                raise WorkspaceNotFoundError(ws) from None
            conn.collections[ws] = collection
        return collection

    async def on(self, ws: str, method: str, **kwargs: Any) -> Any:
        """Call a collection method; a stale handle (collection re-created meanwhile) is renewed once."""
        for fresh in (False, True):
            collection = await self.collection(ws, fresh)
            try:
                return await self.run(getattr(collection, method), **kwargs)
            except self.not_found:
                if fresh:
                    raise WorkspaceNotFoundError(ws) from None
        raise AssertionError("unreachable")

    async def side(self, ws: str) -> Any:
        """The handle of a format-3 workspace's shape registry (None if it has none; legacy.py)."""
        conn = await self.conn()
        side = conn.sides.get(ws)
        if side is None:
            try:
                side = await self.run(conn.client.get_collection, name=side_name(self.name(ws)), embedding_function=None)
            except self.not_found:
                return None
            conn.sides[ws] = side
        return side

    async def max_batch(self) -> int:
        """The most records Chroma takes in one call (0: no limit known)."""
        conn = await self.conn()
        if conn.max_batch is None:
            conn.max_batch = int(await self.run(conn.client.get_max_batch_size))
        return conn.max_batch

    def forget(self, ws: str) -> None:
        """Drop what every client knows of ``ws`` (it was deleted)."""
        for conn in self._conns():
            conn.collections.pop(ws, None)
            conn.sides.pop(ws, None)
            conn.lists_seen.discard(ws)

    def _conns(self) -> list[Conn]:
        if not self.server:
            return [self.embedded]
        return self._loops.values()

    async def close(self) -> None:
        if not self.server:
            self.embedded.collections.clear()
            try:
                await to_thread(self.embedded.client.close)
            finally:
                self._folder.release()
            return
        for _, conn in self._loops.pop_all():  # closing runs on the background loop: its pool goes too
            conn.collections.clear()
        await close_http_client()


# Chroma's AsyncFastAPI keeps one httpx client per hash(event loop) in a class-level dict.
# A new loop can get the hash (id) of a closed one and would inherit a client bound to the
# dead loop ("Event loop is closed"), so an entry we did not see made on this loop is dropped.
_loop_of_entry: dict[int, weakref.ref] = {}


def http_clients() -> dict:
    try:
        from chromadb.api.async_fastapi import AsyncFastAPI
    except ImportError:
        return {}
    clients = getattr(AsyncFastAPI, "_clients", None)
    return clients if isinstance(clients, dict) else {}


def forget_foreign_http_client() -> None:
    loop = asyncio.get_running_loop()
    key = hash(loop)
    owner = _loop_of_entry.get(key)
    if owner is None or owner() is not loop:
        http_clients().pop(key, None)
        _loop_of_entry[key] = weakref.ref(loop)


async def close_http_client() -> None:
    """Close this loop's pooled connections (a later request on this loop opens new ones)."""
    key = hash(asyncio.get_running_loop())
    _loop_of_entry.pop(key, None)
    client = http_clients().pop(key, None)
    if client is not None:
        await client.aclose()
