"""Keyword search over a NodeTable (memory and local): one BM25 index per table, cached by version.

The index is derived data: the table (for local: the log and snapshot it was
read from) is the source of truth. It is built from the table's live contents on
the first keyword search after the table changed (``table.version`` counts
writes, ``table.layout`` renumberings), so inserts, deletes and writes another
process made (which the local store replays into the table before every read)
show at once, and there is nothing on disk to corrupt or to recover after a
crash. The price: the first keyword search after a write rebuilds the index
(about a second per 100k short texts, docs/performance.md).

Callers hold the table's lock (``TableStore._locked``).
"""

from __future__ import annotations

import weakref

import numpy as np

from ...filters import FilterNode
from ...node import VectorNode
from ..engine.table import NodeTable
from ..matching import MIN_OVERFETCH
from .bm25 import Bm25Index

__all__ = ["table_keyword_search"]

_INDEXES: weakref.WeakKeyDictionary[NodeTable, tuple[tuple[int, int], Bm25Index]] = weakref.WeakKeyDictionary()


def _index(table: NodeTable) -> Bm25Index:
    stamp = (table.layout, table.version)
    cached = _INDEXES.get(table)
    if cached is None or cached[0] != stamp:
        contents = table.contents
        cached = _INDEXES[table] = (stamp, Bm25Index((row, contents[row]) for row in table.live_rows().tolist()))
    return cached[1]


def table_keyword_search(table: NodeTable, ws: str, texts: list[str], limit: int, filter: FilterNode | None) -> list[list[tuple[VectorNode, float]]]:
    """Per query, the best ``limit`` live nodes matching ``filter`` (exactly) with their BM25 scores."""
    if not len(table):
        return [[] for _ in texts]
    index = _index(table)
    allowed = None
    if filter is not None:
        allowed = np.zeros(table.n_rows, dtype=bool)
        allowed[table.filter_rows(filter)] = True
    out = []
    for text in texts:
        hits = _top_allowed(index, table.ids, text, limit, allowed)
        rows = np.array([row for row, _ in hits], dtype=np.int64)
        out.append(list(zip(table.nodes(rows, ws), [score for _, score in hits])))
    return out


def _top_allowed(index: Bm25Index, ids: list, text: str, limit: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    if allowed is None:
        return index.top(text, limit, ids.__getitem__)
    fetch = max(2 * limit, MIN_OVERFETCH)
    while True:  # over-fetch until ``limit`` allowed rows are found or the matches run out
        hits = index.top(text, fetch, ids.__getitem__)
        kept = [(row, score) for row, score in hits if allowed[row]]
        if len(kept) >= limit or len(hits) < fetch:
            return kept[:limit]
        fetch *= 4
