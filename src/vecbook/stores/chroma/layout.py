"""How vecbook lays out workspaces in Chroma: collection names, and how vectors are stored.

A workspace ``ws`` is the collection ``{prefix}{ws}`` with ``-`` written ``--``, ``.``
written ``-d`` and ``-e`` appended if the name would not end in a letter or digit:
always a legal Chroma name, and reversible.

Chroma's cosine space hands back vectors rescaled from unit length, a few ulps off. So
a cosine workspace (format 2) is an inner-product (``ip``) collection of vectors vecbook
normalised itself: a vector already of unit length (|‖v‖² − 1| ≤ 1e-6, as embedding models
give them) is stored as is and comes back exactly; any other is stored normalised with an
exact copy in its metadata (``%x``). Ranking by ``q·v`` then differs from cosine by at
most 5e-7 of a score, and scores are recomputed from the exact vectors. Collections of
format 1 (cosine space, a copy of every vector) are still read and written as they are;
``copy_workspace`` moves one to the current format. Records that other tools write into
such a collection are ranked by ``q·v`` too: their vectors should be of unit length.
Formats 3 and 4 store vectors as format 2 does and differ in how metadata is indexed
(format 4, current: chroma_filters.py; earlier ones: legacy.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InvalidWorkspaceIdError
from ..engine.batch import validate_workspace_id
from ..engine.vector_copies import unit_rows

__all__ = ["FORMAT", "INCLUDE", "SPACES", "UNIT_TOLERANCE", "Layout", "collection_name", "layout_of", "workspace_of"]

SPACES = {"cosine": "ip", "dot": "ip", "euclidean": "l2"}  # the space a new collection gets
DISTANCE_OF_SPACE = {"cosine": "cosine", "ip": "dot", "l2": "euclidean"}  # collections without vecbook:distance
UNIT_TOLERANCE = 1e-6  # |‖v‖² − 1| up to which a vector is stored as is in a cosine workspace
INCLUDE = ["metadatas", "documents", "embeddings"]
_UNESCAPE = {"-": "-", "d": ".", "e": ""}


def collection_name(prefix: str, workspace_id: str) -> str:
    """The Chroma collection of a workspace (3–512 chars of ``[A-Za-z0-9._-]``, alnum at both ends)."""
    name = prefix + workspace_id.replace("-", "--").replace(".", "-d")
    return name if name[-1].isalnum() else name + "-e"


def workspace_of(prefix: str, name: str) -> str | None:
    """The workspace id a collection name stands for, or None if vecbook did not name it."""
    if not name.startswith(prefix):
        return None
    ws = re.sub(r"-(.)", lambda m: _UNESCAPE.get(m.group(1), "\x00"), name[len(prefix) :])
    try:
        validate_workspace_id(ws)
    except InvalidWorkspaceIdError:
        return None
    return ws if collection_name(prefix, ws) == name else None


FORMAT = 4  # what new collections are written in


@dataclass(frozen=True)
class Layout:
    """How a collection keeps its vectors: the distance its index ranks by, and which vectors
    have an exact copy in the metadata: ``"all"`` (format 1 cosine collections: Chroma
    normalises), ``"changed"`` (cosine over ``ip``: those vecbook normalised) or ``"none"``;
    and whether filters translate exactly (format 4: every record indexed as filters.py says)."""

    distance: str
    copies: str
    exact_filters: bool = True

    @property
    def include(self) -> list[str]:
        return INCLUDE[:2] if self.copies == "all" else INCLUDE

    def stored(self, vectors: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The vectors to hand Chroma, and the exact copy (or None) to keep beside each."""
        if self.copies == "all":
            return vectors, list(vectors)
        if self.copies == "none":
            return vectors, [None] * len(vectors)
        stored, changed = unit_rows(vectors, UNIT_TOLERANCE)
        return stored, [v if c else None for v, c in zip(vectors, changed.tolist())]


def layout_of(collection: Any) -> Layout:
    """The layout of a collection, from its space and vecbook's metadata (none: a collection vecbook did not make)."""
    metadata = collection.metadata or {}
    hnsw = (collection.configuration_json or {}).get("hnsw") or {}
    space = hnsw.get("space") or metadata.get("hnsw:space") or "l2"
    distance = metadata.get("vecbook:distance") or DISTANCE_OF_SPACE.get(space, space)
    copies = "all" if space == "cosine" else "changed" if distance == "cosine" else "none"
    version = metadata.get("vecbook:format")
    return Layout(distance, copies, exact_filters=isinstance(version, int) and version >= FORMAT)
