"""Sync over async: one background event loop runs every sync call.

vecbook's public methods are written once, as coroutines. The sync twin of a
method submits its coroutine to a private event loop running in a daemon thread
and waits for the result: one path for every call, decided before it starts, so
a call runs exactly once whatever it does (embed, wait on a socket, write).
That works where ``asyncio.run`` cannot, such as inside Jupyter, whose kernel
already runs a loop on the main thread.

Interrupts: Ctrl-C while a sync call waits cancels the call's task and waits for
it to finish (a write rolls back or completes; see ``BaseVectorStore``) before
``KeyboardInterrupt`` is raised. Blocking work runs in worker threads through
:func:`to_thread`, which never lets a cancelled call return while its thread is
still working.

After ``os.fork()`` the child starts a loop of its own on first use (the parent's
loop thread does not exist there), and per-loop resources are forgotten.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import functools
import os
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared background loop, started on first use (in each process)."""
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

_fork_hooks: weakref.WeakSet = weakref.WeakSet()  # objects whose _after_fork() runs in a forked child


def on_fork(obj: Any) -> None:
    """Call ``obj._after_fork()`` in the child of every later ``os.fork()`` (while ``obj`` lives)."""
    _fork_hooks.add(obj)


def _after_fork_in_child() -> None:
    global _lock, _loop, _thread
    _lock, _loop, _thread = threading.Lock(), None, None  # the parent's loop thread does not exist here
    for obj in list(_fork_hooks):
        obj._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _on_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the background loop and return its result.

    If the waiting thread is interrupted (Ctrl-C), the coroutine is cancelled and
    waited for, then the interrupt is raised.
    """
    if _on_loop_thread():
        coro.close()
        raise RuntimeError(
            "a sync vecbook method was called from inside a vecbook coroutine or callback on vecbook's loop; "
            "use the async_ method there instead"
        )
    loop = background_loop()
    result: concurrent.futures.Future = concurrent.futures.Future()
    tasks: list[asyncio.Task] = []

    def start() -> None:
        task = loop.create_task(coro)
        tasks.append(task)
        task.add_done_callback(functools.partial(_settle, result))

    loop.call_soon_threadsafe(start)
    try:
        return result.result()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(lambda: tasks[0].cancel())  # runs after start(): callbacks are FIFO
        try:
            result.result()  # wait until the call has rolled back or finished; a second Ctrl-C stops waiting
        except BaseException:  # noqa: BLE001 - the interrupt is what the caller gets
            pass
        raise


def _settle(result: concurrent.futures.Future, task: asyncio.Task) -> None:
    if task.cancelled():
        result.set_exception(concurrent.futures.CancelledError())
    elif task.exception() is not None:
        result.set_exception(task.exception())
    else:
        result.set_result(task.result())


def iter_sync(agen: AsyncIterator[list[T]]) -> Iterator[list[T]]:
    """Drive an async iterator of pages from sync code: one trip to the loop per page."""
    try:
        while True:
            try:
                yield run_sync(agen.__anext__())  # type: ignore[arg-type]
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None and not _on_loop_thread():
            run_sync(aclose())


async def finish(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile.

    A cancelled caller still waits for it (so nothing it does happens after the call
    has returned), then gets ``CancelledError``. Use it around a write whose outcome
    the caller must know.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                pass  # cancelled again: still wait
        raise


async def to_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn`` in a worker thread; a cancelled caller waits for the thread to finish.

    What ``asyncio.to_thread`` does (the caller's context variables go along), without
    wrapping the executor's future in a task of its own: one task fewer per trip.
    """
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await finish(asyncio.get_running_loop().run_in_executor(None, call))


def sync_twin(async_method: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Make the sync twin of an ``async_`` method: same signature, same docs, run on the background loop."""

    name = async_method.__name__

    @functools.wraps(async_method)
    def method(self: Any, *args: Any, **kwargs: Any) -> T:
        bound = getattr(self, name)  # looked up per call: a subclass's override of the async_ method counts
        return run_sync(bound(*args, **kwargs))

    method.__name__ = async_method.__name__.removeprefix("async_")
    method.__qualname__ = method.__qualname__.replace(async_method.__name__, method.__name__)
    return method


class PerLoop(Generic[T]):
    """One resource per event loop (async clients are bound to the loop that made them).

    An entry goes when its loop is closed (checked whenever a new one is made), so a
    resource that refers to its loop does not keep it alive; a forked child starts with none.
    """

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._items: dict[asyncio.AbstractEventLoop, T] = {}
        self._lock = threading.Lock()
        on_fork(self)

    def _after_fork(self) -> None:
        self._items = {}  # bound to the parent's loop and sockets
        self._lock = threading.Lock()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                for old in [old for old in self._items if old.is_closed()]:
                    del self._items[old]
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

    def __len__(self) -> int:
        return len(self._items)

    def pop_all(self) -> list[tuple[asyncio.AbstractEventLoop, T]]:
        with self._lock:
            items = list(self._items.items())
            self._items.clear()
            return items
