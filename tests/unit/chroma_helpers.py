"""Shared by the chroma backend tests: small vectors and nodes, and a workspace written the old way."""

from __future__ import annotations

import chromadb
import numpy as np

from vecbook import VectorNode
from vecbook.stores.chroma.store import NO_LISTS, collection_name
from vecbook.stores.chroma.filters import encode_metadata


def vec(i: int, dims: int = 8) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(dims).astype(np.float32)


def nodes(count: int, dims: int = 8, metadata=lambda i: {"i": i}) -> list[VectorNode]:
    return [VectorNode(unique_id=f"n{i}", content=f"c{i}", metadata=metadata(i), vector=vec(i, dims)) for i in range(count)]


def format_1_workspace(path, ws: str, items: list[VectorNode], no_lists: bool = False):
    """A workspace as vecbook wrote it before format 2: a cosine collection, an exact copy of
    every vector, ``%j`` and ``%x`` as one-element lists (and the no-lists flag only if asked)."""
    metadata = {"hnsw:space": "cosine", "vecbook:format": 1, **({NO_LISTS: True} if no_lists else {})}
    raw = chromadb.PersistentClient(path=str(path)).create_collection(collection_name("vecbook_", ws), metadata=metadata, embedding_function=None)
    stored = [encode_metadata(n.metadata, n.vector) for n in items]
    for md in stored:
        md["%j"] = [md["%j"]]
    raw.add(ids=[n.unique_id for n in items], embeddings=[n.vector for n in items], metadatas=stored, documents=[n.content for n in items])
    return raw
