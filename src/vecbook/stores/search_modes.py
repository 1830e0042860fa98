"""The keyword and hybrid search modes of BaseVectorStore, with their hooks (a mixin of the base class).

Hooks (coroutines unless noted), beside those listed in ``base.py``:

``_keyword_translate(ws, filter) -> Translation``   the native filter that ``_keyword`` takes and
                                    whether it is exact (else the hits are post-filtered with
                                    ``matching.keep_matching_pairs``, over-fetching); the default
                                    hands the tree over, exact
``_keyword(ws, texts, limit, native) -> list[list[(VectorNode, float)]]``
                                    per query text, the best ``limit`` nodes (with vectors) matching
                                    ``native`` with their BM25 scores, best first, equal scores by
                                    ``unique_id``; nodes sharing no term with the query are left out.
                                    The default: a BM25 index of the workspace's contents, the tree
                                    applied to the nodes read back (``keyword/scan.py``)
``_wrote(ws, changes=None)``        (sync) called after every public write to ``ws``: ``changes`` lists what it
                                    wrote, ``(ids, contents)`` upserted or ``(ids, None)`` deleted, in
                                    order; ``None`` if the call failed or the workspace was dropped or
                                    refreshed (derived indexes start over)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ValidationError
from ..filters import FilterNode
from ..node import VectorNode
from .fusion import hybrid_depth, rrf
from .keyword.scan import ScanIndexes
from .matching import MIN_OVERFETCH, Translation, keep_matching_pairs

if TYPE_CHECKING:
    from .base import BaseVectorStore

__all__ = ["SearchModes", "query_texts"]

Hits = list[tuple[VectorNode, float]]


class SearchModes:
    """Keyword and hybrid search over the hooks; mixed into BaseVectorStore."""

    _scan_indexes: ScanIndexes | None = None

    async def _keyword_translate(self, ws: str, filter: FilterNode | None) -> Translation:
        return Translation(filter)

    async def _keyword(self: BaseVectorStore, ws: str, texts: list[str], limit: int, native: Any) -> list[Hits]:
        if self._scan_indexes is None:
            self._scan_indexes = ScanIndexes()
        return await self._scan_indexes.search(self, ws, texts, limit, native)

    def _wrote(self, ws: str, changes: list[tuple[list[str], list[str] | None]] | None = None) -> None:
        if self._scan_indexes is not None:
            self._scan_indexes.note(ws, changes)

    async def _keyword_hits(self: BaseVectorStore, ws: str, texts: list[str], top_k: int, filter: FilterNode | None) -> list[Hits]:
        """Per text, the best ``top_k`` keyword hits matching ``filter``: over-fetching while the native filter is a superset."""
        translation = await self._keyword_translate(ws, filter)
        if translation.empty or not texts:
            return [[] for _ in texts]
        if translation.exact:
            return await self._keyword(ws, texts, top_k, translation.native)
        results: list[Hits] = [[] for _ in texts]
        pending, limit = list(range(len(texts))), max(2 * top_k, MIN_OVERFETCH)
        while pending:
            found = await self._keyword(ws, [texts[i] for i in pending], limit, translation.native)
            short = []
            for row, hits in zip(pending, found):
                results[row] = keep_matching_pairs(filter, hits)[:top_k]
                if len(results[row]) < top_k and len(hits) >= limit:
                    short.append(row)
            pending, limit = short, limit * 4
        return results

    async def _hybrid_hits(
        self: BaseVectorStore, ws: str, texts: list[str], matrix: np.ndarray, top_k: int, filter: FilterNode | None
    ) -> list[Hits]:
        """Per query, reciprocal rank fusion of its vector and keyword lists, each ``hybrid_depth(top_k)`` long."""
        depth = hybrid_depth(top_k)
        vector_lists = await self._matching_hits(ws, matrix, depth, filter)
        keyword_lists = await self._keyword_hits(ws, texts, depth, filter)
        return [
            rrf([self._ranked(query, hits)[0], [node for node, _ in keyword]], top_k)
            for query, hits, keyword in zip(matrix, vector_lists, keyword_lists)
        ]


def query_texts(queries: Any, mode: str) -> list[str]:
    """The query texts of a keyword or hybrid search (which need texts, not vectors)."""
    if isinstance(queries, str):
        raise ValidationError("batch_search takes a list of queries; use search for one")
    if isinstance(queries, np.ndarray) or not all(isinstance(q, str) for q in queries):
        raise ValidationError(f"mode={mode!r} searches texts: pass a list of strings, not vectors")
    return list(queries)
