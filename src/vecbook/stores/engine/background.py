"""Work a store does in a thread of its own, beside the calls it must not slow down."""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["lower_this_threads_priority"]


def lower_this_threads_priority() -> None:
    """Let the calling thread yield the CPU to the store's callers (checksum verifiers call it first).

    Only on Linux, where a thread id is a task id that ``setpriority`` takes; elsewhere, and
    where the system refuses, the thread keeps its priority.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
