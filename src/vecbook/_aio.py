"""Sync over async: one background event loop runs every sync call that needs one.

vecbook's public methods are written once, as coroutines. The sync twin of a
method submits its coroutine to a private event loop running in a daemon
thread and waits for the result. That works where ``asyncio.run`` cannot,
such as inside Jupyter, whose kernel already runs a loop on the main thread.

Eager runs: for a store whose hooks never wait on a socket (memory, local,
embedded engines driven through :func:`to_thread`) or that has a blocking client
to use instead (see :func:`in_eager_run`), a sync twin first drives
the coroutine on the caller's own thread, with no loop at all: :func:`to_thread`
then just calls its function, since the caller blocks anyway. Code that really
needs a loop (an HTTP call, an embedding with retries) calls :func:`require_loop`
*before any side effect*, which abandons the eager run; the twin then runs the
method again on the background loop. This saves the two thread switches of a
loop hop on every fast call (a few hundred microseconds on a busy machine).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
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


_eager: contextvars.ContextVar[bool] = contextvars.ContextVar("vecbook_eager", default=False)
eager_counts = {"eager": 0, "fallback": 0}  # how sync calls ran (read by tests and benchmarks)


class NeedsLoop(Exception):
    """Raised inside an eager run by code that must wait on the event loop."""


def in_eager_run() -> bool:
    """Whether the caller runs eagerly (its own thread, no loop): blocking calls are fine there."""
    return _eager.get()


def require_loop() -> None:
    """Abandon an eager run here (call it before any side effect); a no-op otherwise."""
    if _eager.get():
        raise NeedsLoop


async def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread``, except in an eager run, where the caller's thread does the work."""
    if _eager.get():
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def run_eager(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run ``make_coro()`` on this thread without a loop, or, if it needs one, on the background loop.

    The coroutine must not have side effects before it could call :func:`require_loop`.
    """
    if _thread is not None and threading.current_thread() is _thread:
        return run_sync(make_coro())  # raises the "called from inside a coroutine" error
    token = _eager.set(True)
    try:
        coro = make_coro()
        try:
            coro.send(None)  # type: ignore[attr-defined]
        except StopIteration as done:
            eager_counts["eager"] += 1
            return done.value
        except NeedsLoop:
            pass
        else:  # it awaited something real: a bug in a hook, but the loop can still run it
            coro.close()  # type: ignore[attr-defined]
    finally:
        _eager.reset(token)
    eager_counts["fallback"] += 1
    return run_sync(make_coro())


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


def sync_twin(async_method: Callable[..., Awaitable[T]], eager: bool = False) -> Callable[..., T]:
    """Make the sync twin of an ``async_`` method: same signature, same docs.

    With ``eager=True`` the twin runs eagerly (see the module docstring) on
    objects whose ``_runs_eagerly`` is true.
    """

    name = async_method.__name__

    @functools.wraps(async_method)
    def method(self: Any, *args: Any, **kwargs: Any) -> T:
        bound = getattr(self, name)  # looked up per call: a subclass's override of the async_ method counts
        if eager and self._runs_eagerly:
            return run_eager(lambda: bound(*args, **kwargs))
        return run_sync(bound(*args, **kwargs))

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

    def values(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

    def pop_all(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        with self._lock:
            items = list(self._items.items())
            self._items.clear()
            return items
