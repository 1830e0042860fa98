"""Requests that fit a Qdrant server's body limit.

A Qdrant server refuses a request whose body is over ``service.max_request_size_mb``
(32 MiB by default) with a 400, whole: 1,100 nodes of 1,536 dimensions make a 38 MiB
upsert. So writes and batch searches go in requests of at most ``REQUEST_BYTES``, half
the default limit, sized by an upper bound of their JSON (a float32 vector component
never takes more than 25 characters).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["REQUEST_BYTES", "spans", "point_batches", "query_spans"]

REQUEST_BYTES = 16 * 1024 * 1024
_FLOAT = 25  # "-2.2250738585072014e-308," is the longest a float gets in JSON
_POINT = 128  # the id, the keys and brackets around a point
_QUERY = 256  # limit, with_payload and the keys of one query request


def spans(sizes: list[int], budget: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` runs whose sizes add up to at most ``budget`` (default ``REQUEST_BYTES``;
    each run holds at least one)."""
    budget = REQUEST_BYTES if budget is None else budget
    found, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > budget:
            found.append((start, i))
            start, total = i, 0
        total += size
    if sizes:
        found.append((start, len(sizes)))
    return found


def point_batches(batch: Any, budget: int | None = None) -> list[Any]:
    """A ``Batch`` of points as batches whose upsert requests stay under ``budget`` bytes."""
    from qdrant_client import models

    sizes = [_POINT + _FLOAT * len(v) + len(json.dumps(p, default=str)) for v, p in zip(batch.vectors, batch.payloads)]
    return [
        models.Batch.model_construct(ids=batch.ids[a:b], vectors=batch.vectors[a:b], payloads=batch.payloads[a:b])
        for a, b in spans(sizes, budget)
    ]


def query_spans(count: int, dimensions: int, native: Any, budget: int | None = None) -> list[tuple[int, int]]:
    """Runs of ``count`` queries (each repeating the filter ``native``) whose batch requests stay under ``budget``."""
    filter_size = len(native.model_dump_json(exclude_none=True)) if native is not None else 0
    return spans([_QUERY + _FLOAT * dimensions + filter_size] * count, budget)
