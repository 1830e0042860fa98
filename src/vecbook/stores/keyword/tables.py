"""Keyword search over a NodeTable (memory and local): one BM25 index per table, cached by version.

The index is derived data, in RAM: the table (for local: the log and snapshot
it was read from) is the source of truth, so there is nothing on disk to corrupt
or to recover after a crash. It is built from the table's live contents on the
first keyword search (about a second per 100k short texts, docs/performance.md),
then brought up to date before each keyword search that follows a change
(``table.version`` counts writes): the rows whose content object changed (a
write replaces it; a delete sets it to None) are replaced in or removed from the
index, a few milliseconds. A renumbering (``table.layout``: compaction, a bulk
load) or a change of more than a quarter of the rows rebuilds it. So inserts,
deletes and the writes of another process (which the local store replays into
the table before every read) show in the next keyword search.

Callers hold the table's lock (``TableStore._locked``).
"""

from __future__ import annotations

import os
import weakref

import numpy as np

from ...filters import FilterNode
from ...node import VectorNode
from ..engine.table import NodeTable
from ..matching import MIN_OVERFETCH
from .bm25 import Bm25Index

__all__ = ["table_keyword_search"]

class _TableIndex:
    """A Bm25Index of a table's live rows (keys are rows), and the contents it was made from."""

    def __init__(self, table: NodeTable):
        self.layout, self.version = table.layout, table.version
        self.contents = list(table.contents)  # row -> the content object indexed (None: a dead row)
        alive = table.live_rows().tolist()
        self.index = Bm25Index((row, self.contents[row]) for row in alive)

    def catch_up(self, table: NodeTable) -> bool:
        """Apply the table's changes since the last call; False if a rebuild is due instead."""
        if table.layout != self.layout:
            return False
        if table.version == self.version:
            return True
        old, new = self.contents, table.contents
        changed = [row for row, (a, b) in enumerate(zip(old, new)) if a is not b]
        changed.extend(range(len(old), len(new)))
        if len(changed) > max(1000, len(new) // 4):
            return False
        self.index.update([r for r in changed if new[r] is None], [(r, new[r]) for r in changed if new[r] is not None])
        self.contents, self.version = list(new), table.version
        return True


_INDEXES: weakref.WeakKeyDictionary[NodeTable, _TableIndex] = weakref.WeakKeyDictionary()
if hasattr(os, "register_at_fork"):  # a forked child rebuilds its own: tantivy's threads do not cross a fork
    os.register_at_fork(after_in_child=_INDEXES.clear)


def _index(table: NodeTable) -> Bm25Index:
    cached = _INDEXES.get(table)
    if cached is None or not cached.catch_up(table):
        cached = _INDEXES[table] = _TableIndex(table)
    return cached.index


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
    share = max(int(allowed.sum()), 1) / max(index.size, 1)  # a 1 % filter asks 100x as many at first
    fetch = int(max(2 * limit, MIN_OVERFETCH) / min(1.0, share))
    while True:  # over-fetch until ``limit`` allowed rows are found or the matches run out
        hits = index.top(text, fetch, ids.__getitem__)
        kept = [(row, score) for row, score in hits if allowed[row]]
        if len(kept) >= limit or len(hits) < fetch:
            return kept[:limit]
        fetch *= 4
