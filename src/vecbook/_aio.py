"""Sync over async: one background event loop runs every sync call.

vecbook's public methods are written once, as coroutines. The sync twin of a
method submits its coroutine to a private event loop running in a daemon
thread and waits for the result. That works where ``asyncio.run`` cannot,
such as inside Jupyter, whose kernel already runs a loop on the main thread.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared background loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="vecbook-loop", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def _stop_loop() -> None:
    if _loop is not None and not _loop.is_closed():
        _loop.call_soon_threadsafe(_loop.stop)


atexit.register(_stop_loop)


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine on the background loop and return its result."""
    if _thread is not None and threading.current_thread() is _thread:
        close = getattr(coro, "close", None)
        if close:
            close()
        raise RuntimeError(
            "a sync vecbook method was called from inside a vecbook coroutine; "
            "use the async_ method there instead"
        )
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())  # type: ignore[arg-type]
    return future.result()


def iter_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator from sync code, one item at a time."""
    try:
        while True:
            try:
                yield run_sync(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            run_sync(aclose())


def sync_twin(async_method: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Make the sync twin of an ``async_`` method: same signature, same docs."""

    @functools.wraps(async_method)
    def method(self: Any, *args: Any, **kwargs: Any) -> T:
        return run_sync(async_method(self, *args, **kwargs))

    method.__name__ = async_method.__name__.removeprefix("async_")
    method.__qualname__ = method.__qualname__.replace(async_method.__name__, method.__name__)
    return method


class PerLoop(Generic[T]):
    """One resource per event loop (async clients are bound to the loop that made them)."""

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                item = self._items[loop] = self._factory()
            return item

    def pop_current(self) -> T | None:
        """Remove and return the current loop's resource, if any."""
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._items.pop(loop, None)

    def pop_all(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        with self._lock:
            items = list(self._items.items())
            self._items.clear()
            return items
