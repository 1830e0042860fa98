"""Qdrant layout: collection names, point ids, the points vecbook writes and the nodes it reads back.

A workspace is the collection ``<prefix><id>`` (``vecbook_<id>`` with the default prefix
``vecbook_``); ``<prefix without its _>x_<hex>_<id in lower case>`` when the id has capitals,
so ids differing only in case never share a directory on a case-insensitive disk; and
``<prefix without its _>p_<its name>`` marks a workspace created without a vector size.
A node is a point whose id is a UUID5 of its ``unique_id``, with the payload ``{"unique_id", "content", "metadata", "_present", "_f"}``: reads return
``metadata``; filters read ``_present`` (``exists``) and ``_f`` (the values by kind and
path), see ``qdrant/filters.py``. Qdrant normalises vectors of cosine
collections, so there the original float32 vector is also kept, base64, in ``_vector``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import numpy as np

from ...errors import ValidationError
from ...node import VectorNode, trusted_node
from ..engine.batch import NodeBatch, validate_workspace_id
from ..engine.vector_copies import decode_copies, encode_copy

__all__ = ["DEFAULT_PREFIX", "check_prefix", "collection_name", "pending_name", "workspace_of", "point_id", "points", "nodes", "VECTOR_KEY", "FORMAT_KEY", "FORMAT", "READ_PAYLOAD"]

DEFAULT_PREFIX = "vecbook_"
_PREFIX_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}_")
_ID_NAMESPACE = uuid.UUID("5b0c1f5e-0f4e-5c3a-9d1e-7a1c6b2e4f10")
VECTOR_KEY = "_vector"
FORMAT_KEY, FORMAT = "_v", 2  # 2: filters read ``_f`` (points of format 1 have none)
READ_PAYLOAD = ["unique_id", "content", "metadata", VECTOR_KEY]  # what reads ask for: not the filter copies


def check_prefix(prefix: Any) -> str:
    """``prefix`` if it can start vecbook's collection names, else ValidationError."""
    if not isinstance(prefix, str) or not _PREFIX_SHAPE.fullmatch(prefix):
        raise ValidationError(
            f"collection_prefix must be 2-102 characters of A-Z a-z 0-9 _ - starting with a letter or digit and ending with _, got {prefix!r}"
        )
    return prefix


def collection_name(prefix: str, ws: str) -> str:
    """The collection that holds workspace ``ws`` (reversible, see :func:`workspace_of`)."""
    if ws == ws.lower():
        return prefix + ws
    mask = sum(1 << i for i, c in enumerate(ws) if c.isupper())
    return f"{prefix[:-1]}x_{mask:x}_{ws.lower()}"


def pending_name(prefix: str, ws: str) -> str:
    """The marker collection of workspace ``ws`` while it has no vector size (created without dimensions)."""
    return f"{prefix[:-1]}p_{collection_name(prefix, ws)}"


def workspace_of(prefix: str, name: str) -> str | None:
    """The workspace id a collection name (or its marker's) encodes, or ``None`` if vecbook did not make it with ``prefix``."""
    pending, cased = f"{prefix[:-1]}p_", f"{prefix[:-1]}x_"
    if name.startswith(pending):
        name = name[len(pending) :]
    if name.startswith(cased):
        mask_hex, _, lower = name[len(cased) :].partition("_")
        try:
            mask = int(mask_hex, 16)
        except ValueError:
            return None
        ws = "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(lower))
    elif name.startswith(prefix):
        ws = name[len(prefix) :]
    else:
        return None
    try:
        validate_workspace_id(ws)
    except ValueError:
        return None
    return ws if collection_name(prefix, ws) == name else None


def point_id(unique_id: str) -> str:
    """The UUID5 point id of a node id (any string, even one with lone surrogates)."""
    digest = hashlib.sha1(_ID_NAMESPACE.bytes + unique_id.encode("utf-8", "surrogatepass")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def points(chunk: NodeBatch, distance: str | None) -> Any:
    """A ``Batch`` of points; built without pydantic's per-float checks (the batch is validated)."""
    from qdrant_client import models

    from .filters import FIELDS_KEY, PRESENT_KEY, filter_payload

    ids, contents, vectors = chunk.ids, chunk.contents, chunk.vectors
    payloads = []
    for i, metadata in enumerate(chunk.metadatas):
        present, fields = filter_payload(metadata)
        payloads.append(
            {"unique_id": ids[i], "content": contents[i], "metadata": metadata, PRESENT_KEY: present, FIELDS_KEY: fields, FORMAT_KEY: FORMAT}
        )
    if distance == "cosine":
        for payload, vector in zip(payloads, vectors):
            payload[VECTOR_KEY] = encode_copy(vector)
    return models.Batch.model_construct(ids=[point_id(i) for i in ids], vectors=vectors.tolist(), payloads=payloads)


def nodes(records: list[Any], ws: str) -> list[VectorNode]:
    """Nodes from Qdrant records or scored points (their vectors decoded in one go)."""
    payloads = [r.payload or {} for r in records]
    vectors = decode_copies([p.get(VECTOR_KEY) for p in payloads])
    return [
        trusted_node(
            payload.get("unique_id", str(record.id)),
            ws,
            payload.get("content", ""),
            payload.get("metadata") or {},
            vector if vector is not None else None if record.vector is None else np.asarray(record.vector, dtype=np.float32),
        )
        for record, payload, vector in zip(records, payloads, vectors)
    ]
