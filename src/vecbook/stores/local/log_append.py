"""Appending one frame to a workspace's log durably, and taking it back.

A write's frame is acknowledged only once it is appended and fsynced; an append or
fsync that fails (disk full, EIO) is truncated off before :class:`StorageError` is
raised, so a call that raised has not happened. The caller holds the workspace's
file lock (``store.py``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..._file_writes import write_all
from ...errors import StorageError
from .files import damaged, storage_error

__all__ = ["append_frame", "take_back"]

logger = logging.getLogger("vecbook.local")


def append_frame(path: Path, start: int, frame: list) -> None:
    """Write ``frame`` (its pieces) at ``start`` (dropping a torn tail there) and fsync; on failure take it back and raise."""
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
            os.fsync(fd)
        except OSError as exc:
            _undo_append(fd, path, start, exc)
    finally:
        os.close(fd)


def take_back(path: Path, start: int, cause: BaseException) -> None:
    """Truncate the log to ``start`` (a frame whose call is about to raise)."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            os.ftruncate(fd, start)
            os.fsync(fd)
        finally:
            os.close(fd)
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
