"""Which paths a node's metadata has, and how to rebuild it, in one key per node: *shapes* (Chroma format 3).

Chroma cannot test whether a key is present, and format 2 stored a marker per present
path (``%p.a.b``) plus the metadata as JSON (``%j``). Chroma reads every key of a hit
back and writes each as a row: with four fields, the markers made an unfiltered batch
of queries ~20 % slower, and ``%j`` made inserts on a server ~12 % slower.

Format 3 stores one key instead, ``%s``: the id of the node's shape, registered once in
the workspace's side collection ``{collection}-s`` *before* any node of that shape is
written. A shape's record (its document) holds the filter keys the node has and the
*layout* of its metadata: key order and the type of each value (chroma_filters:
``metadata_layout``), so the filter keys alone give the metadata back exactly and
``%j`` is kept only where they cannot (lists, keys no filter reaches, huge ints).
Ids are hashes of the document, so an id always means the same shape (layouts are
cached for good), registering twice is harmless, and writers in other processes
cannot undo each other's registrations (plain upserts of distinct records).

``exists`` on path ``p`` reads the registry and becomes, for ``exists: true``
(``false`` alike, with the shapes that lack ``p``)::

    %s in [registered shapes with p]
    or %p.p = true                      nodes written with markers (see SHAPE_CAP)
    or %s not in [every registered shape, "m"]   shapes this reader does not know

The last branch holds the nodes of shapes registered after the reader looked, and
records other tools wrote: it makes the clause a superset that the caller narrows
with the post-filter, so answers stay exact whatever the registry holds. Once a
workspace has SHAPE_CAP shapes (metadata whose keys vary without bound), further
shapes are not registered: their nodes keep the format-2 markers, ``%j`` and ``%s: "m"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "SHAPE_KEY",
    "MARKED",
    "SHAPE_CAP",
    "side_name",
    "shape_document",
    "read_shape",
    "shape_id",
    "shape_keys",
    "apply_shape",
    "exists_clause",
]

SHAPE_KEY = "%s"
MARKED = "m"  # the shape of nodes that carry markers (never a hex digest)
SHAPE_CAP = 256  # shapes registered per workspace
_PRESENT, _JSON = "%p.", "%j"


def side_name(collection: str) -> str:
    """The side collection of ``collection`` (``-s`` is no escape a workspace name can contain)."""
    return collection + "-s"


def shape_document(keys: Iterable[str], layout: list | None) -> str:
    """The registry's record of a shape: its filter keys, and how to rebuild its metadata."""
    return json.dumps({"k": sorted(keys), "l": layout}, separators=(",", ":"))


def read_shape(document: str) -> tuple[frozenset[str], list | None]:
    shape = json.loads(document)
    return frozenset(shape["k"]), shape["l"]


def shape_id(document: str) -> str:
    """The id of a shape: a hash of its document, so an id always means the same shape."""
    return hashlib.blake2b(document.encode(), digest_size=8).hexdigest()


def shape_keys(encoded: Mapping[str, Any]) -> list[str]:
    """The filter keys an encoded metadata has present (its ``%p.`` markers)."""
    return [key[len(_PRESENT) :] for key in encoded if key.startswith(_PRESENT)]


def apply_shape(encoded: dict[str, Any], keys: list[str], registered_id: str | None, rebuildable: bool) -> None:
    """Replace the markers (``keys``) of ``encoded`` by its registered shape id, and drop ``%j``
    if the shape's layout rebuilds the metadata; or, with None, keep both and tag the node MARKED."""
    if registered_id is None:
        encoded[SHAPE_KEY] = MARKED
        return
    for key in keys:
        del encoded[_PRESENT + key]
    if rebuildable:
        del encoded[_JSON]
    encoded[SHAPE_KEY] = registered_id


def exists_clause(key: str, present: bool, shapes: Mapping[str, frozenset[str]]) -> dict[str, Any]:
    """The ``where`` (a superset: post-filter it) of ``exists: present`` on filter key ``key``."""
    matching = [sid for sid, keys in shapes.items() if (key in keys) == present]
    branches: list[dict[str, Any]] = [{SHAPE_KEY: {"$in": matching}}] if matching else []
    if present:
        branches.append({_PRESENT + key: True})
    else:
        branches.append({"$and": [{SHAPE_KEY: MARKED}, {_PRESENT + key: {"$ne": True}}]})
    branches.append({SHAPE_KEY: {"$nin": [*shapes, MARKED]}})
    return {"$or": branches}
