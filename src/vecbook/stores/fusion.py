"""Search modes and reciprocal rank fusion (the ``hybrid`` mode).

``mode="vector"`` (the default) ranks by the distance to the embedded query;
``"keyword"`` by BM25 over ``content``; ``"hybrid"`` fuses the two lists by
reciprocal rank fusion: a node's score is the sum, over the lists it is in, of
``1 / (RRF_K + rank)`` with ranks from 1. Each list is fetched to
``hybrid_depth(top_k)`` = max(2 * top_k, 50) nodes, with the filter applied to both,
so a node found by either list can be returned.
"""

from __future__ import annotations

from ..errors import ValidationError
from ..node import VectorNode

__all__ = ["MODES", "RRF_K", "check_mode", "hybrid_depth", "rrf"]

MODES = ("vector", "keyword", "hybrid")
RRF_K = 60
MIN_DEPTH = 50


def check_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValidationError(f"mode must be one of {', '.join(repr(m) for m in MODES)}; got {mode!r}")
    return mode


def hybrid_depth(top_k: int) -> int:
    """How many nodes each list of a hybrid search is fetched to."""
    return max(2 * top_k, MIN_DEPTH)


def rrf(lists: list[list[VectorNode]], top_k: int, k: int = RRF_K) -> list[tuple[VectorNode, float]]:
    """The ``top_k`` best nodes of the ranked ``lists`` by fused score, best first (ties: first seen first)."""
    scores: dict[str, float] = {}
    nodes: dict[str, VectorNode] = {}
    for ranked in lists:
        for rank, node in enumerate(ranked, start=1):
            scores[node.unique_id] = scores.get(node.unique_id, 0.0) + 1.0 / (k + rank)
            nodes.setdefault(node.unique_id, node)
    best = sorted(scores, key=scores.__getitem__, reverse=True)[:top_k]
    return [(nodes[i], scores[i]) for i in best]
