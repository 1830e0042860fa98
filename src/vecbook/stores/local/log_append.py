"""Appending one frame to a workspace's log durably, and taking it back.

A write's frame is acknowledged only once it is appended and fsynced; an append or
fsync that fails (disk full, EIO) is truncated off before :class:`StorageError` is
raised, so a call that raised has not happened. The caller holds the workspace's
file lock and its table's lock (``store.py``).

While the frame is fsynced, the write is applied to the table in a helper thread: the
disk and the CPU work at once (a 1,000-row frame's fsync takes about as long as applying
it: a 1M bulk load runs 5–20 % faster). The helper applies it, not the writer, because
the writer releases the GIL inside ``fsync`` at once, where a helper waiting to fsync
could wait for the GIL while the writer applies. The writer holds the table's lock
throughout, so no reader sees the change before the frame is durable, and a write that
raises leaves a changed table to be rebuilt from the files (``store.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..._file_writes import write_all
from ...errors import StorageError
from .files import damaged, storage_error

__all__ = ["append_frame"]

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _helpers() -> ThreadPoolExecutor:
    """The threads that apply writes while their frames are fsynced (one per workspace writing at once,
    up to four), made on first use."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(4, thread_name_prefix="vecbook-apply")
        return _pool


def _forget_pool() -> None:
    global _lock, _pool
    _lock, _pool = threading.Lock(), None  # the parent's threads do not exist in a forked child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)

logger = logging.getLogger("vecbook.local")


def append_frame(path: Path, start: int, frame: list, meanwhile: Callable[[], None]) -> None:
    """Write ``frame`` (its pieces) at ``start`` (dropping a torn tail there) and fsync it while
    ``meanwhile()`` runs in a helper thread; return once both are done.

    If the append, the fsync or ``meanwhile()`` fails, the frame is truncated off and the error
    raised (a failed append or fsync as :class:`StorageError`).
    """
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise damaged(path, f"{path} is missing, but meta.json names it as the log of the published generation") from None
    except OSError as exc:
        raise storage_error(path, exc, "open") from exc
    try:
        size = os.fstat(fd).st_size
        if size < start:
            raise damaged(path, f"{path} is {size} bytes long, shorter than the {start} bytes of frames already read from it", size)
        if size > start:
            logger.warning(
                "%s: dropping the %d bytes after offset %d, the torn last frame of a write that never returned "
                "(a crash or a kill); every acknowledged write is before it",
                path, size - start, start,
            )
        try:
            if size > start:
                os.ftruncate(fd, start)
            _write_all(fd, frame, start)
        except OSError as exc:
            _undo_append(fd, path, start, exc)
        try:
            applied = _helpers().submit(meanwhile)
        except BaseException as exc:  # no thread to run it (the interpreter is exiting)
            _take_back(fd, path, start, exc)
            raise
        try:
            os.fsync(fd)
        except OSError as exc:
            applied.exception()  # wait for it to finish before the call raises
            _undo_append(fd, path, start, exc)
        failed = applied.exception()
        if failed is not None:
            _take_back(fd, path, start, failed)
            raise failed
    finally:
        os.close(fd)


def _take_back(fd: int, path: Path, start: int, cause: BaseException) -> None:
    """Truncate the log to ``start`` (a frame whose call is about to raise ``cause``)."""
    try:
        os.ftruncate(fd, start)
        os.fsync(fd)
    except OSError as undo:
        raise storage_error(path, undo, f"take back a write that failed ({type(cause).__name__}) from") from cause


def _undo_append(fd: int, path: Path, start: int, exc: OSError) -> None:
    """Truncate a failed append off the log, then raise StorageError (saying so if that failed too)."""
    try:
        os.ftruncate(fd, start)
        os.fsync(fd)
    except OSError as undo:
        raise StorageError(
            path,
            f"cannot append to {path} ({exc.strerror or exc}), and taking the partial write back failed too "
            f"({undo.strerror or undo}): this write may or may not be stored; open the store again to see",
            exc.errno,
        ) from exc
    raise storage_error(path, exc, "append to") from exc


def _write_all(fd: int, pieces: list, offset: int) -> None:
    for piece in pieces:
        write_all(fd, piece, offset)
        offset += memoryview(piece).nbytes
