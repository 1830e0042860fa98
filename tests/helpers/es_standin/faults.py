"""Failures to inject: bulk items refused, whole requests failed, connections dropped."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .errors import EsError


@dataclass
class ItemFault:
    status: int
    type: str
    reason: str
    ids: frozenset[str] | None
    after: int  # write actions let through before failing
    count: int | None  # how many to fail; None = every later one
    seen: int = 0
    failed: int = 0

    def hit(self, doc_id: str | None) -> bool:
        if self.ids is not None and doc_id not in self.ids:
            return False
        self.seen += 1
        if self.seen <= self.after or (self.count is not None and self.failed >= self.count):
            return False
        self.failed += 1
        return True


@dataclass
class RequestFault:
    method: str | None
    path: re.Pattern
    status: int
    type: str
    reason: str
    drop: bool
    remaining: int
    skip: int


class Faults:
    """What the next requests should suffer; every rule is used up or cleared."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list[ItemFault] = []
        self._requests: list[RequestFault] = []

    def fail_items(
        self,
        ids=None,
        after: int = 0,
        count: int | None = None,
        status: int = 429,
        type: str = "es_rejected_execution_exception",
        reason: str = "rejected execution (injected by the stand-in)",
    ) -> None:
        """Bulk write/delete items fail: those with ``ids`` (default any), after ``after`` got through."""
        with self._lock:
            self._items.append(ItemFault(status, type, reason, None if ids is None else frozenset(ids), after, count))

    def fail_requests(
        self,
        path: str = ".*",
        method: str | None = None,
        count: int = 1,
        status: int = 503,
        type: str = "unavailable_shards_exception",
        reason: str = "injected failure",
        drop: bool = False,
        after: int = 0,
    ) -> None:
        """After ``after`` requests matching ``path`` (a regex) got through, the next ``count`` fail,
        with an ES error or, with ``drop``, by closing the connection without an answer."""
        with self._lock:
            self._requests.append(RequestFault(method, re.compile(path), status, type, reason, drop, count, after))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._requests.clear()

    def item_fault(self, op: str, index: str, doc_id: str | None) -> EsError | None:
        with self._lock:
            for fault in self._items:
                if fault.hit(doc_id):
                    return EsError(fault.status, fault.type, fault.reason)
        return None

    def request_fault(self, method: str, path: str) -> RequestFault | None:
        with self._lock:
            for fault in self._requests:
                if fault.remaining > 0 and (fault.method in (None, method)) and fault.path.search(path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.remaining -= 1
                    return fault
        return None
