"""Elasticsearch clients and their errors: one ``AsyncElasticsearch`` per event loop.

The first use of a loop's client opens a plain TCP connection to some node within
``connect_timeout``, so an unreachable cluster fails fast with BackendUnavailableError
(the client itself would retry for ``request_timeout``). Errors never show credentials.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import elastic_transport
import elasticsearch
from elasticsearch import AsyncElasticsearch, NotFoundError

from ..._aio import PerLoop
from ...errors import BackendUnavailableError, MissingDependencyError, ValidationError, WorkspaceNotFoundError

try:
    import aiohttp  # AsyncElasticsearch's default HTTP layer
except ImportError:  # pragma: no cover - depends on the environment
    aiohttp = None

__all__ = ["EsClients", "UNREACHABLE", "default_hosts", "check_refresh", "scrub", "describe_failure", "index_missing"]

UNREACHABLE = (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout)


@dataclass
class _Conn:
    client: Any
    checked: bool = False


class EsClients:
    """The clients of one store (one per event loop), where they point, and error translation.

    Args:
        client_args: keyword arguments for ``AsyncElasticsearch`` (hosts, credentials, options).
        connect_timeout: seconds to wait for a TCP connection to some node.
    """

    def __init__(self, client_args: dict[str, Any], connect_timeout: float):
        options = dict(client_args)
        if aiohttp is None and "node_class" not in options:
            raise MissingDependencyError("aiohttp", "elasticsearch", feature="EsVectorStore (the async Elasticsearch client)")
        orjson_serializer = getattr(elasticsearch, "OrjsonSerializer", None)  # present when orjson is installed
        if orjson_serializer is not None and not {"serializer", "serializers"} & set(options):
            options["serializer"] = orjson_serializer()  # the client's own choice for vectors: ~10x faster
        self._args = options
        self.connect_timeout = float(connect_timeout)
        nodes = AsyncElasticsearch(**options).transport.node_pool.all()  # checks the arguments now
        self.endpoints = [(n.config.host, n.config.port) for n in nodes]
        self.hosts = [n.base_url for n in nodes]  # without credentials
        self._clients: PerLoop[_Conn] = PerLoop(lambda: _Conn(AsyncElasticsearch(**self._args)))

    @property
    def where(self) -> str:
        return ", ".join(f"{host}:{port}" for host, port in self.endpoints)

    async def get(self) -> Any:
        """This loop's client; its first use checks that some node accepts connections, quickly."""
        conn = self._clients.get()
        if not conn.checked:
            await self._probe()
            conn.checked = True
        return conn.client

    async def _probe(self) -> None:
        causes = []
        for host, port in self.endpoints:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                causes.append(f"{host}:{port}: {type(exc).__name__} {exc}".strip())
                continue
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            return
        raise BackendUnavailableError(f"Elasticsearch is unreachable at {self.where} ({'; '.join(causes)})")

    def unreachable(self, exc: BaseException, note: str = "") -> BackendUnavailableError:
        return BackendUnavailableError(f"Elasticsearch at {self.where} did not answer: {scrub(exc)}{note}")

    @contextmanager
    def calling(self, ws: str | None = None, forget: Callable[[str], Any] | None = None) -> Iterator[None]:
        """Translate the client's errors: unreachable server, vanished index (``forget(ws)`` is called then)."""
        try:
            yield
        except UNREACHABLE as exc:
            raise self.unreachable(exc) from None
        except NotFoundError as exc:
            if ws is not None and exc.error == "index_not_found_exception":
                if forget is not None:
                    forget(ws)
                raise WorkspaceNotFoundError(ws) from None
            raise

    async def close(self) -> None:
        current = asyncio.get_running_loop()
        for loop, conn in self._clients.pop_all():
            if loop is current:
                await conn.client.close()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(conn.client.close(), loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(future), 5)
                except Exception:  # that loop is busy or dying; its connections go with it
                    pass
            # A client whose loop has stopped cannot be closed (aiohttp needs that loop): it is dropped.


def default_hosts() -> list[str]:
    return [h.strip() for h in os.environ.get("FLOW_ES_HOSTS", "http://localhost:9200").split(",") if h.strip()]


def check_refresh(refresh: Any) -> bool | str:
    if refresh in (True, False, "wait_for"):
        return refresh
    raise ValidationError(f"refresh must be True, False or 'wait_for', got {refresh!r}")


def scrub(exc: BaseException) -> str:
    """A short error text with any user:password@ taken out of URLs."""
    text = str(exc).split("\n")[0][:300]
    return re.sub(r"//[^/@\s]+@", "//", text)


def describe_failure(info: dict) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"{info.get('_id')!r}: {error.get('type')}: {error.get('reason')}"
    return f"{info.get('_id')!r}: {error or 'status ' + str(info.get('status'))}"


def index_missing(failure: str) -> bool:
    return ": index_not_found_exception:" in failure
