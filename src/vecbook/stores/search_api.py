"""Vector search, the public half of BaseVectorStore's search (a mixin of it).

``search``, ``search_by_vector`` and ``batch_search`` all run ``_batch_search``: check the
arguments, embed the query texts, then dispatch by ``mode``: vector hits through the
``_search`` hook (over-fetching while the backend's native filter is a superset, see
``matching.py``), keyword and hybrid hits through ``SearchModes`` (``search_modes.py``, which
lists their hooks). Every vector score is recomputed exactly here (``_ranked``), so a
backend's own score never reaches the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._aio import sync_twin
from ..errors import ValidationError
from ..filters import FilterNode, parse_filter
from ..node import VectorNode
from .arguments import public
from .engine.batch import check_vector
from .engine.scoring import exact_scores
from .fusion import check_mode
from .matching import MIN_OVERFETCH, keep_matching
from .search_modes import SearchModes, query_texts

__all__ = ["SearchMethods"]


class SearchMethods(SearchModes):
    """``search``, ``search_by_vector``, ``batch_search`` and their async twins; mixed into BaseVectorStore."""

    @public
    async def async_search(
        self, query: str, workspace_id: str, top_k: int = 1, filter_dict: dict | None = None, mode: str = "vector"
    ) -> list[VectorNode]:
        """The ``top_k`` nodes best matching ``query``, best first, with ``metadata["score"]``.

        ``mode``: ``"vector"`` (the default) ranks by similarity to the embedded query (the
        score follows the store's distance); ``"keyword"`` by BM25 over ``content`` (the score
        is the BM25 score; nodes sharing no word with the query are left out; the query is
        not embedded); ``"hybrid"`` fuses both lists by reciprocal rank fusion (the score is
        the fused one, see ``vecbook.stores.fusion``). ``filter_dict`` applies in every mode.
        """
        if not isinstance(query, str):
            raise ValidationError(f"query must be a string, got {type(query).__name__}; use search_by_vector for vectors")
        return (await self._batch_search([query], workspace_id, top_k, filter_dict, mode))[0]

    @public
    async def async_search_by_vector(self, vector: Any, workspace_id: str, top_k: int = 1, filter_dict: dict | None = None) -> list[VectorNode]:
        """Like :meth:`search`, with a query vector instead of a text."""
        query = check_vector(vector, None, " (query vector)")
        return (await self._batch_search(query[None, :], workspace_id, top_k, filter_dict))[0]

    @public
    async def async_batch_search(
        self,
        queries: Sequence[str] | np.ndarray,
        workspace_id: str,
        top_k: int = 1,
        filter_dict: dict | None = None,
        mode: str = "vector",
    ) -> list[list[VectorNode]]:
        """Search several queries in one call: texts, or a 2-D array of query vectors.

        ``mode`` as in :meth:`search`; ``"keyword"`` and ``"hybrid"`` take texts only.
        """
        return await self._batch_search(queries, workspace_id, top_k, filter_dict, mode)

    async def _batch_search(
        self, queries: Any, workspace_id: str, top_k: int, filter_dict: dict | None, mode: str = "vector"
    ) -> list[list[VectorNode]]:
        check_mode(mode)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValidationError(f"top_k must be a non-negative integer, got {top_k!r}")
        tree = parse_filter(filter_dict)
        texts = query_texts(queries, mode) if mode != "vector" else None
        ws = await self._require(workspace_id)
        if texts is not None and (top_k == 0 or not texts):
            return [[] for _ in texts]
        if mode == "keyword":
            found = await self._keyword_hits(ws, texts, int(top_k), tree)
            return [[node.with_score(score) for node, score in hits] for hits in found]
        matrix = await self._query_matrix(queries)
        if not len(matrix) or top_k == 0 or not await self._searchable(ws, matrix):
            return [[] for _ in range(len(matrix))]
        if mode == "hybrid":
            found = await self._hybrid_hits(ws, texts, matrix, int(top_k), tree)
            return [[node.with_score(score) for node, score in hits] for hits in found]
        results = await self._matching_hits(ws, matrix, int(top_k), tree)
        return [self._scored(query, hits) for query, hits in zip(matrix, results)]

    async def _matching_hits(self, ws: str, queries: np.ndarray, top_k: int, filter: FilterNode | None) -> list[list[VectorNode]]:
        """The best ``top_k`` matching nodes per query: over-fetching while the native filter is a superset."""
        translation = await self._translate(ws, filter)
        if translation.empty:
            return [[] for _ in range(len(queries))]
        if translation.exact:
            return await self._search(ws, queries, top_k, translation.native)
        results: list[list[VectorNode]] = [[] for _ in range(len(queries))]
        pending, limit = list(range(len(queries))), max(2 * top_k, MIN_OVERFETCH)
        while pending:
            found = await self._search(ws, queries[pending], limit, translation.native)
            short = []
            for row, hits in zip(pending, found):
                results[row] = keep_matching(filter, hits)[:top_k]
                if len(results[row]) < top_k and len(hits) >= limit:  # more candidates may match
                    short.append(row)
            pending, limit = short, limit * 4
        return results

    async def _query_matrix(self, queries: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(queries, np.ndarray) and queries.ndim == 2:
            matrix = np.ascontiguousarray(queries, dtype=np.float32)
            if not np.isfinite(matrix).all():
                raise ValidationError("query vectors contain NaN or infinity")
            return matrix
        if isinstance(queries, str):
            raise ValidationError("batch_search takes a list of queries; use search for one")
        texts = list(queries)
        if not all(isinstance(q, str) for q in texts):
            raise ValidationError("batch_search takes a list of strings or a 2-D array of vectors")
        return await self._embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)

    def _scored(self, query: np.ndarray, hits: list[VectorNode]) -> list[VectorNode]:
        hits, scores = self._ranked(query, hits)
        return [hit.with_score(score) for hit, score in zip(hits, scores)]

    def _ranked(self, query: np.ndarray, hits: list[VectorNode]) -> tuple[list[VectorNode], list[float]]:
        """``hits`` best first by their exact score for ``query``, and those scores."""
        if not hits:
            return [], []
        scores = exact_scores(query, np.array([h.vector for h in hits], dtype=np.float64), self.distance)
        if len(hits) > 1 and not (scores[:-1] >= scores[1:]).all():  # backends usually rank them already
            order = np.argsort(-scores, kind="stable")
            hits, scores = [hits[i] for i in order], scores[order]
        return hits, scores.tolist()

    search = sync_twin(async_search)
    search_by_vector = sync_twin(async_search_by_vector)
    batch_search = sync_twin(async_batch_search)
