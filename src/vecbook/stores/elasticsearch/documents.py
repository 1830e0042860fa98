"""Elasticsearch layout: index names, the mapping, documents written and nodes read back, kNN bodies.

Document layout (index ``{index_prefix}{mapped workspace id}``, ``dynamic: strict``)::

    content        text
    metadata       object, enabled: false   the user's metadata, returned exactly as inserted
    vector         binary                   the float32 vector (base64), returned bit for bit
    embedding      dense_vector             what kNN searches: the vector, unit-normalised for cosine
    filter_terms   keyword                  typed terms the portable filters match (see es_filters)

Cosine and dot products both use ``max_inner_product`` (cosine over normalised
vectors), which, unlike ES's ``cosine`` and ``dot_product``, accepts zero vectors;
euclidean uses ``l2_norm``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ValidationError, VecbookError
from ...filters import FilterNode
from ...node import VectorNode, trusted_node
from ..engine.batch import NodeBatch, validate_workspace_id
from .filters import FIELD, filter_terms, to_query
from ..engine.vector_copies import decode_copies, encode_copy

__all__ = [
    "index_name",
    "workspace_of",
    "check_prefix",
    "mappings",
    "index_info",
    "IndexInfo",
    "upsert_actions",
    "nodes",
    "knn_bodies",
    "MAX_WINDOW",
    "SOURCE",
]

MAX_WINDOW = 10_000  # ES caps k, num_candidates and a page's size at 10,000
SIMILARITY = {"cosine": "max_inner_product", "dot": "max_inner_product", "euclidean": "l2_norm"}
SOURCE = {"includes": ["content", "metadata", "vector"]}
FORMAT = 2  # 2: exact number keys (19 hex digits) and date instants (``t`` terms)


def index_name(prefix: str, workspace_id: str) -> str:
    """The index of a workspace: lower-cased, with the upper-case positions as a hex bit mask.

    ``"My.Ws"`` -> ``"vecbook-my.ws~9"``; ids without capitals keep their plain name.
    """
    mask = sum(1 << i for i, ch in enumerate(workspace_id) if ch.isupper())
    return f"{prefix}{workspace_id.lower()}" + (f"~{mask:x}" if mask else "")


def workspace_of(prefix: str, name: str) -> str | None:
    """The workspace id an index name stands for, or None if vecbook did not name it."""
    if not name.startswith(prefix):
        return None
    lower, _, mask = name[len(prefix) :].partition("~")
    try:
        bits = int(mask, 16) if mask else 0
    except ValueError:
        return None
    ws = "".join(ch.upper() if bits >> i & 1 else ch for i, ch in enumerate(lower))
    try:
        validate_workspace_id(ws)
    except VecbookError:
        return None
    return ws if index_name(prefix, ws) == name else None


def check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", prefix or ""):
        raise ValidationError(
            f"index_prefix {prefix!r} must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit"
        )
    return prefix


# ---- the mapping -------------------------------------------------------------------------------


@dataclass
class IndexInfo:
    dimensions: int | None
    distance: str | None


def mappings(ws: str, dimensions: int | None, distance: str, index_options: dict) -> dict:
    """The static mapping of a new workspace's index."""
    embedding: dict[str, Any] = {"type": "dense_vector", "index": True, "similarity": SIMILARITY[distance]}
    if dimensions is not None:
        embedding["dims"] = dimensions
    if index_options:
        embedding["index_options"] = index_options
    return {
        "dynamic": "strict",
        "_meta": {"vecbook": {"format": FORMAT, "workspace_id": ws, "distance": distance}},
        "properties": {
            "content": {"type": "text"},
            "metadata": {"type": "object", "enabled": False},
            "vector": {"type": "binary"},
            "embedding": embedding,
            FIELD: {"type": "keyword"},
        },
    }


def index_info(get_mapping_body: dict) -> IndexInfo:
    """The vector size and distance from a get-mapping response."""
    mapping = next(iter(get_mapping_body.values()))["mappings"]
    meta = mapping.get("_meta", {}).get("vecbook", {})
    return IndexInfo(mapping.get("properties", {}).get("embedding", {}).get("dims"), meta.get("distance"))


# ---- documents ---------------------------------------------------------------------------------


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): only ranks, so float32 is precise enough."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))[:, None]  # float64: no overflow
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def upsert_actions(index: str, batch: NodeBatch, distance: str):
    """``actions(start, stop)``: the bulk index actions of those nodes (filter terms computed now: they may raise)."""
    terms = [filter_terms(md) for md in batch.metadatas]
    embeddings = normalized(batch.vectors) if distance == "cosine" else batch.vectors

    def actions(start: int, stop: int) -> Iterator[dict]:
        for i in range(start, stop):
            yield {
                "_index": index,
                "_id": batch.ids[i],
                "_source": {
                    "content": batch.contents[i],
                    "metadata": batch.metadatas[i],
                    "vector": encode_copy(batch.vectors[i]),
                    "embedding": embeddings[i],  # both client serializers take numpy arrays
                    FIELD: terms[i],
                },
            }

    return actions


def nodes(ws: str, docs: list[dict]) -> list[VectorNode]:
    """Nodes from hits or mget docs (``_id`` and ``_source``), their vectors decoded in one go."""
    sources = [doc["_source"] for doc in docs]
    vectors = decode_copies([source.get("vector") for source in sources])
    return [
        trusted_node(doc["_id"], ws, source.get("content", ""), source.get("metadata") or {}, vector)
        for doc, source, vector in zip(docs, sources, vectors)
    ]


# ---- searches ----------------------------------------------------------------------------------


def knn_bodies(queries: np.ndarray, top_k: int, distance: str, num_candidates: int, filter: FilterNode | None) -> list[dict]:
    """One search body per query row: approximate kNN on ``embedding``, the filter applied inside kNN."""
    k = min(top_k, MAX_WINDOW)
    if distance == "cosine":
        queries = normalized(queries)
    knn_filter = {"filter": to_query(filter)} if filter is not None else {}
    candidates = min(MAX_WINDOW, max(k, num_candidates))
    return [
        {
            "knn": {"field": "embedding", "query_vector": q, "k": k, "num_candidates": candidates, **knn_filter},
            "size": k,
            "_source": SOURCE,
        }
        for q in queries
    ]


def search_kwargs(body: dict) -> dict:
    """A search body as keyword arguments of ``AsyncElasticsearch.search``."""
    out = dict(body)
    out["source"] = out.pop("_source")
    return out
