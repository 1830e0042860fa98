"""What a backend makes of a filter, and the post-filter for what it cannot say exactly.

A backend's ``_translate(ws, filter)`` returns a :class:`Translation`: the native
form its ``_search`` and ``_pages`` hooks take, and whether that form matches
exactly the filter's nodes (``exact``) or a superset of them, which the base class
then narrows with :func:`keep_matching` (over-fetching searches until ``top_k``
nodes match or the candidates run out). ``empty`` says no node can match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..filters import FilterNode, filter_mask
from ..node import VectorNode

__all__ = ["Translation", "keep_matching", "keep_matching_pairs", "MIN_OVERFETCH"]

MIN_OVERFETCH = 32  # candidates asked for at least, per query, when the native filter is a superset


@dataclass(frozen=True)
class Translation:
    """``native``: the backend's form of the filter (``None``: no filter); ``exact``: it matches
    exactly the filter's nodes, else a superset; ``empty``: no node can match."""

    native: Any = None
    exact: bool = True
    empty: bool = False


def keep_matching(filter: FilterNode | None, nodes: list[VectorNode]) -> list[VectorNode]:
    """The nodes whose metadata matches ``filter``, in their order."""
    if filter is None or not nodes:
        return nodes
    mask = filter_mask(filter, [node.metadata for node in nodes])
    return [node for node, keep in zip(nodes, mask.tolist()) if keep]


def keep_matching_pairs(filter: FilterNode | None, pairs: list[tuple[VectorNode, float]]) -> list[tuple[VectorNode, float]]:
    """The ``(node, score)`` pairs whose node's metadata matches ``filter``, in their order."""
    if filter is None or not pairs:
        return pairs
    mask = filter_mask(filter, [node.metadata for node, _ in pairs])
    return [pair for pair, keep in zip(pairs, mask.tolist()) if keep]
