"""Shared by the chroma backend tests: small vectors and nodes, and workspaces written the old ways."""

from __future__ import annotations

import hashlib
import json

import chromadb
import numpy as np

from vecbook import VectorNode
from vecbook.stores.chroma.store import NO_LISTS, collection_name
from vecbook.stores.engine.vector_copies import encode_copy


def vec(i: int, dims: int = 8) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(dims).astype(np.float32)


def nodes(count: int, dims: int = 8, metadata=lambda i: {"i": i}) -> list[VectorNode]:
    return [VectorNode(unique_id=f"n{i}", content=f"c{i}", metadata=metadata(i), vector=vec(i, dims)) for i in range(count)]


def format_1_workspace(path, ws: str, items: list[VectorNode], no_lists: bool = False):
    """A workspace as vecbook wrote it before format 2: a cosine collection, an exact copy of
    every vector, ``%j`` and ``%x`` as one-element lists (and the no-lists flag only if asked)."""
    metadata = {"hnsw:space": "cosine", "vecbook:format": 1, **({NO_LISTS: True} if no_lists else {})}
    raw = chromadb.PersistentClient(path=str(path)).create_collection(collection_name("vecbook_", ws), metadata=metadata, embedding_function=None)
    stored = [{**old_index(n.metadata), "%j": [json.dumps(n.metadata)], "%x": [encode_copy(n.vector)]} for n in items]
    raw.add(ids=[n.unique_id for n in items], embeddings=[n.vector for n in items], metadatas=stored, documents=[n.content for n in items])
    return raw


def old_index(metadata: dict, prefix: tuple = ()) -> dict:
    """The filter keys formats 1-3 wrote: scalars under their path (no dots in keys; numbers as
    floats), a marker per present path, list elements as tokens in ``%v``."""
    out: dict = {}
    for key, value in metadata.items():
        if not key or "." in key:
            continue
        path = prefix + (key,)
        name = ".".join(s.replace("%", "%25").replace("$", "%24").replace("#", "%23") for s in path)
        if isinstance(value, dict):
            out.update({f"%p.{name}": True, **old_index(value, path)} if value else {})
        elif isinstance(value, list):
            scalars = [v if isinstance(v, (str, bool)) else float(v) for v in value if isinstance(v, (str, int, float, bool))]
            if scalars:
                out.update({f"%p.{name}": True, f"%l.{name}": True})
                out.setdefault("%v", []).extend(json.dumps([name, v]) for v in scalars)
        elif value is not None:
            out.update({f"%p.{name}": True, name: value if isinstance(value, (str, bool)) else float(value)})
    return out


def old_layout(metadata: dict) -> list | None:
    """A format-3 shape's layout of ``metadata`` (None: not rebuildable, the node kept ``%j``)."""
    out = []
    for key, value in metadata.items():
        if not key or "." in key or isinstance(value, list) or (type(value) is int and abs(value) > 2**53):
            return None
        code = old_layout(value) if isinstance(value, dict) else "n" if value is None else "s" if isinstance(value, str) else "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
        if code is None:
            return None
        out.append([key, code])
    return out


def old_workspace(path, ws: str, items: list[VectorNode], version: int):
    """A workspace as vecbook wrote it in format 2 (markers and ``%j``) or 3 (a shape id per node,
    registered in the side collection ``{name}-s``; ``%j`` only where the shape cannot rebuild it)."""
    client = chromadb.PersistentClient(path=str(path))
    name = collection_name("vecbook_", ws)
    raw = client.create_collection(name, metadata={"vecbook:format": version, "vecbook:distance": "cosine"}, configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
    side = client.create_collection(name + "-s", embedding_function=None) if version >= 3 else None
    stored = []
    for n in items:
        md = {**old_index(n.metadata), "%j": json.dumps(n.metadata, separators=(",", ":")), "%x": [encode_copy(n.vector)]}
        if side is not None:
            layout = old_layout(n.metadata)
            keys = sorted(k[3:] for k in md if k.startswith("%p."))
            document = json.dumps({"k": keys, "l": layout}, separators=(",", ":"))
            sid = hashlib.blake2b(document.encode(), digest_size=8).hexdigest()
            side.upsert(ids=[sid], embeddings=[[1.0]], documents=[document])
            md = {k: v for k, v in md.items() if not k.startswith("%p.") and (k != "%j" or layout is None)}
            md["%s"] = sid
        stored.append(md)
    unit = [n.vector / np.linalg.norm(n.vector) for n in items]
    raw.add(ids=[n.unique_id for n in items], embeddings=unit, metadatas=stored, documents=[n.content for n in items])
    return raw
