"""One process at a time on an embedded engine's folder.

Embedded Chroma lets two processes open one folder and then loses writes (records become
unreadable); Qdrant's local mode refuses a second process itself. :class:`FolderLock`
makes vecbook refuse the second process up front for Chroma: a ``flock`` on a lock file
in the folder, taken when the first store of this process opens it and released when the
last one closes. Stores of one process share the folder (and the engine's client).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..errors import StoreInUseError

try:
    import fcntl
except ImportError:  # Windows: no lock, as before
    fcntl = None

__all__ = ["FolderLock"]

LOCK_NAME = "vecbook.lock"


class FolderLock:
    """A per-process, reference-counted exclusive lock on ``folder``."""

    _held: dict[str, list] = {}  # realpath -> [open lock file, users]
    _guard = threading.Lock()

    def __init__(self, folder: str | os.PathLike, engine: str, hint: str):
        self.path = os.path.realpath(folder)
        with self._guard:
            held = self._held.get(self.path)
            if held is None:
                held = self._held[self.path] = [self._take(engine, hint), 0]
            held[1] += 1
        self._released = False

    def _take(self, engine: str, hint: str):
        Path(self.path).mkdir(parents=True, exist_ok=True)
        lock = open(os.path.join(self.path, LOCK_NAME), "a+")
        if fcntl is None:
            return lock
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise StoreInUseError(
                f"{self.path} is open in another process (pid {holder}); embedded {engine} cannot be shared between processes: {hint}"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        return lock

    def release(self) -> None:
        """Let go (the file lock goes when the last user of this process lets go)."""
        if self._released:
            return
        self._released = True
        with self._guard:
            held = self._held.get(self.path)
            if held is None:
                return
            held[1] -= 1
            if held[1] <= 0:
                del self._held[self.path]
                held[0].close()

    @classmethod
    def forget_all(cls) -> None:
        """In a forked child: the parent's locks are not ours (its stores are refused there)."""
        cls._held = {}
        cls._guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=FolderLock.forget_all)
