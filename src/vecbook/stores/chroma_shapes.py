"""Which paths a node's metadata has, in one key per node: *shapes* (Chroma format 3).

Chroma cannot test whether a key is present, and format 2 stored a marker per present
path (``%p.a.b``). Chroma reads every key of a hit back, and each costs about as much
as a field of the user's (~3 µs a key and hit: with four fields, the markers made
an unfiltered batch of queries ~20 % slower and every insert wrote twice the rows).

Format 3 stores one key instead, ``%s``: the id of the node's shape, the set of
paths it has. A shape is registered once, in the workspace's side collection
``{collection}-s`` (record id: the shape id; document: the JSON list of its keys),
*before* any node of that shape is written. Ids are content hashes, so a registered
id never lies and registering twice is harmless; the side collection takes plain
upserts, so writers in other processes cannot undo each other's registrations.

``exists`` on path ``p`` reads the registry and becomes, for ``exists: true``
(``false`` alike, with the shapes that lack ``p``)::

    %s in [registered shapes with p]
    or %p.p = true                      nodes written with markers (see SHAPE_CAP)
    or %s not in [every registered shape, "m"]   shapes this reader does not know

The last branch holds the nodes of shapes registered after the reader looked, and
records other tools wrote: it makes the clause a superset that the caller narrows
with the post-filter, so answers stay exact whatever the registry holds. Once a
workspace has SHAPE_CAP shapes (metadata whose keys vary without bound), further
shapes are not registered: their nodes keep the format-2 markers and ``%s: "m"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SHAPE_KEY", "MARKED", "SHAPE_CAP", "side_name", "shape_id", "shape_keys", "apply_shape", "exists_clause"]

SHAPE_KEY = "%s"
MARKED = "m"  # the shape of nodes that carry markers (never a hex digest)
SHAPE_CAP = 256  # shapes registered per workspace
_PRESENT = "%p."


def side_name(collection: str) -> str:
    """The side collection of ``collection`` (``-s`` is no escape a workspace name can contain)."""
    return collection + "-s"


def shape_id(keys: Iterable[str]) -> str:
    """The id of the shape of a node with these filter keys (order does not matter)."""
    text = json.dumps(sorted(keys), separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def shape_keys(encoded: Mapping[str, Any]) -> list[str]:
    """The filter keys an encoded metadata has present (its ``%p.`` markers)."""
    return [key[len(_PRESENT) :] for key in encoded if key.startswith(_PRESENT)]


def apply_shape(encoded: dict[str, Any], registered: bool) -> None:
    """Replace the markers of ``encoded`` by its shape id, or keep them and tag the node MARKED."""
    keys = shape_keys(encoded)
    if not registered:
        encoded[SHAPE_KEY] = MARKED
        return
    for key in keys:
        del encoded[_PRESENT + key]
    encoded[SHAPE_KEY] = shape_id(keys)


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
