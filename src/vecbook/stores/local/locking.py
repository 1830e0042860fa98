"""A workspace's ``LOCK`` file: one exclusive ``flock`` per write, waited for with a timeout.

The holder writes its pid into the file, so a writer that gives up can name it.
``flock`` locks belong to an open file: a process that dies (even by ``kill -9``)
frees its lock at once. Without ``fcntl`` (Windows) locking is a no-op: writers
of one process are still serialised by the store's thread locks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ...errors import LockTimeoutError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["acquire", "holder", "is_current", "open_lock", "release", "try_acquire"]

_PID_WIDTH = 20
_FIRST_WAIT, _LONGEST_WAIT = 0.0002, 0.01  # polling a held lock: from 0.2 ms, growing to 10 ms


def open_lock(path: Path):
    """Open (creating if needed) the lock file; FileNotFoundError if its folder is gone."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    return os.fdopen(fd, "r+b", buffering=0)  # closed when the state holding it goes


def try_acquire(lock) -> bool:
    """Take the lock if it is free; never waits."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def acquire(lock, path: Path, deadline: float | None, timeout: float | None = None) -> None:
    """Take the lock, waiting until ``deadline`` (``time.monotonic()``; None: for ever), then record our pid.

    Raises :class:`LockTimeoutError` naming the holder's pid (and ``timeout``, the
    wait that was allowed) if the deadline passes.
    """
    if fcntl is None:
        return
    if not try_acquire(lock):
        if deadline is None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        else:
            _wait(lock, path, deadline, timeout)
    try:
        os.pwrite(lock.fileno(), str(os.getpid()).encode().ljust(_PID_WIDTH - 1) + b"\n", 0)
    except OSError:
        pass  # only a hint for waiters


def _wait(lock, path: Path, deadline: float, timeout: float | None) -> None:
    delay = _FIRST_WAIT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeoutError(path, timeout or 0.0, holder(lock))
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, _LONGEST_WAIT)
        if try_acquire(lock):
            return


def release(lock) -> None:
    if fcntl is not None and not lock.closed:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def holder(lock) -> int | None:
    """The pid the last holder wrote into the lock file, if any."""
    try:
        text = os.pread(lock.fileno(), _PID_WIDTH, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def is_current(lock, path: Path) -> bool:
    """Whether ``lock`` is still the file at ``path`` (its folder was not deleted or re-created meanwhile)."""
    try:
        here, there = os.fstat(lock.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
