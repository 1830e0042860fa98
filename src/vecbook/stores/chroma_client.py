"""Chroma clients: the connection record of a store, and the pooled HTTP clients of ``AsyncHttpClient``.

Embedded, a store has one ``Conn`` (a ``PersistentClient``); on a server, one per event
loop (an ``AsyncHttpClient``, which Chroma pools per ``hash(event loop)``: see below).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Conn", "http_clients", "forget_foreign_http_client", "close_http_client"]


@dataclass
class Conn:
    """A client and the collection handles it opened (one per event loop on a server)."""

    client: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    collections: dict[str, Any] = field(default_factory=dict)
    max_batch: int | None = None
    lists_seen: set[str] = field(default_factory=set)  # workspaces found without vecbook:no_lists


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
