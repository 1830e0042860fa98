"""Chroma metadata and ``where`` clauses that give the portable filters their exact meaning.

Chroma stores flat metadata (str, int, float, bool and lists of one of those),
its ``where`` takes one operator per level, ranges on numbers only and no
negation of a sub-clause, and ``{"f": v}`` never matches a list. So a node's
metadata is stored as an index plus the original:

=========  ======================================================================
key        holds
=========  ======================================================================
``a.b``    each scalar a filter path can reach, under that path (segments with
           ``%`` ``$`` ``#`` escaped as ``%25`` ``%24`` ``%23``, and Chroma's
           reserved ``chroma:document`` as ``chroma%3Adocument``); numbers as
           floats, as the filters compare them
``%v``     list elements as tokens ``json([path, value])`` (numbers as floats)
``%l.a.b`` True where the path holds a list: a candidate for any range on it
``%p.a.b`` True where the path is present (``exists``); in format 3 only on nodes
           whose shape is not registered
``%s``     (format 3) the id of the node's shape, the set of paths it has,
           instead of the markers: see ``chroma_shapes.py``
``%j``     the metadata as inserted, as JSON: what reads return, exactly (format 3:
           only where the shape's layout cannot rebuild it from the keys above)
``%x``     (cosine collections, vectors not stored as given) the vector's float32
           bytes, base64: see ``chroma_layout.py``
=========  ======================================================================

``%j`` is a string, which the collection's schema leaves unindexed. ``%x`` is a
one-element list: Chroma keeps list values in a table of their own, and a filter on
scalars then does not wade through kilobytes of base64 per node (with them among the
scalars, a range filter on 10k nodes took twice as long). Lists cost writes, though
(~0.2 ms a node for a one-element list at 10k nodes), so small ``%j`` is a scalar;
``%j`` as a one-element list and ``%x`` as a string (as vecbook wrote them before) are read as well.

Reserved keys start with ``%`` and a non-hex letter, so no escaped path can
collide with them. While a collection holds no list (its metadata still has
``vecbook:no_lists``, set at creation and removed before the first list is written),
``%v`` and ``%l`` match nothing: :func:`to_where` leaves them out, and a numeric range
is then exact. Keys that no filter path can reach (empty, or containing a
dot) live in ``%j`` only. Markers are scalar keys rather than arrays: Chroma
indexes those, and deletes them with their collection (chroma-core/chroma#7594).

A parsed filter becomes a ``where`` matching exactly the same nodes or, where
Chroma cannot say it (a range may hit list elements, string ranges, a negated
range), a superset that the caller narrows with :func:`vecbook.filters.filter_mask`
(``Where.exact`` is False). Negations are pushed down to the leaves and inverted:
Chroma's ``$ne``, ``$nin`` and ``$not_contains`` match nodes without the key,
which is exactly vecbook's meaning of ne, nin and ``exists: False``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...filters import And, Compare, Exists, FilterNode, Not, Or, Range, filter_leaves
from .shapes import SHAPE_KEY, exists_clause
from ..engine.vector_copies import decode_copies, decode_copy, encode_copy

__all__ = [
    "Where",
    "to_where",
    "needs_list_check",
    "needs_shapes",
    "encode_metadata",
    "has_lists",
    "decode_metadata",
    "metadata_layout",
    "compile_layout",
    "rebuild",
    "decode_metadatas",
    "decode_vector",
    "decode_vectors",
    "field_key",
    "JSON_KEY",
    "VECTOR_KEY",
    "EVERYTHING",
]

JSON_KEY, VALUES_KEY, VECTOR_KEY, PRESENT, LISTED = "%j", "%v", "%x", "%p.", "%l."
_NOTHING = {VALUES_KEY: {"$contains": "%"}}  # tokens are JSON arrays, never "%"
EVERYTHING = {VALUES_KEY: {"$not_contains": "%"}}
_INVERSE = {"eq": "ne", "ne": "eq", "in": "nin", "nin": "in"}


def field_key(path: tuple[str, ...]) -> str:
    """The Chroma key of a filter path (segments never contain dots)."""
    key = ".".join(s.replace("%", "%25").replace("$", "%24").replace("#", "%23") for s in path)
    return "chroma%3Adocument" if key == "chroma:document" else key  # a name Chroma reserves


# ---- metadata ------------------------------------------------------------------------


def encode_metadata(metadata: dict[str, Any], vector: np.ndarray | None = None) -> dict[str, Any]:
    """The Chroma metadata that stores ``metadata`` (JSON-clean) and indexes it for filters,
    with a copy of ``vector`` if given."""
    out: dict[str, Any] = {}
    tokens: list[str] = []
    _walk(metadata, (), out, tokens)
    if tokens:
        out[VALUES_KEY] = list(dict.fromkeys(tokens))
    out[JSON_KEY] = json.dumps(metadata, separators=(",", ":"))
    if vector is not None:
        out[VECTOR_KEY] = [encode_copy(vector)]
    return out


def has_lists(encoded: dict[str, Any]) -> bool:
    """Whether metadata encoded by :func:`encode_metadata` indexes any list element."""
    return VALUES_KEY in encoded or any(key.startswith(LISTED) for key in encoded)


def _walk(mapping: dict, prefix: tuple[str, ...], out: dict, tokens: list) -> None:
    for key, value in mapping.items():
        if not key or "." in key:
            continue
        path = prefix + (key,)
        name = field_key(path)
        if isinstance(value, dict):
            if value:
                out[PRESENT + name] = True
                _walk(value, path, out, tokens)
        elif isinstance(value, list):
            if any(v is not None for v in value):
                out[PRESENT + name] = True
            scalars = [_token(name, v) for v in value if isinstance(v, (str, int, float, bool))]
            if scalars:
                out[LISTED + name] = True
                tokens.extend(t for t in scalars if t is not None)
        elif value is not None:
            out[PRESENT + name] = True
            native = _canonical(value)
            if native is not None:
                out[name] = native


def _canonical(value: Any) -> Any:
    # Every number as a float: Chroma compares a float operand with an int it stores by truncating
    # the operand (an int 0 equals 0.5), and the filters compare numbers as floats anyway.
    return value if isinstance(value, (str, bool)) else _number(value)


def _number(value: int | float) -> float | None:
    try:
        return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0, which compare equal
    except OverflowError:
        return None


def _token(name: str, value: Any) -> str | None:
    canonical = _canonical(value)
    return None if canonical is None else json.dumps([name, canonical])


def metadata_layout(metadata: dict[str, Any]) -> list | None:
    """How to rebuild ``metadata`` from its filter keys alone: ``[key, code]`` pairs in order,
    the code ``s``/``b``/``i``/``f``/``n`` (str, bool, int, float, None) or, for a dict, its own
    layout; None where those keys cannot give it back (lists, keys no filter path reaches,
    ints beyond 2**53, -0.0): such metadata keeps ``%j``."""
    out: list = []
    for key, value in metadata.items():
        if not key or "." in key:
            return None
        if isinstance(value, dict):
            code = metadata_layout(value)
            if code is None:
                return None
        elif value is None or isinstance(value, (str, bool)):
            code = "n" if value is None else "s" if isinstance(value, str) else "b"
        elif isinstance(value, int) and abs(value) <= 2**53:
            code = "i"
        elif isinstance(value, float) and (value or math.copysign(1.0, value) > 0):
            code = "f"
        else:
            return None
        out.append([key, code])
    return out


def compile_layout(layout: list, prefix: tuple[str, ...] = ()) -> list[tuple[str, Any, str]]:
    """A layout as ``(key, stored key or nested readers, code)`` triples: what :func:`rebuild` reads."""
    return [
        (key, compile_layout(code, (*prefix, key)), "d") if isinstance(code, list) else (key, field_key((*prefix, key)), code)
        for key, code in layout
    ]


def rebuild(stored: dict[str, Any], readers: list[tuple[str, Any, str]]) -> dict[str, Any]:
    """The metadata a compiled layout describes, from its stored filter keys (KeyError if one is missing)."""
    out: dict[str, Any] = {}
    for key, where, code in readers:
        if code == "d":
            out[key] = rebuild(stored, where)
        elif code == "n":
            out[key] = None
        else:
            out[key] = int(stored[where]) if code == "i" else stored[where]
    return out


def decode_metadata(stored: dict[str, Any] | None, layouts: dict[str, list] | None = None) -> dict[str, Any]:
    """The metadata as inserted, from ``%j`` or by its shape's (compiled) layout (for records
    written by others: their metadata as is)."""
    if not stored:
        return {}
    text = _single(stored.get(JSON_KEY))
    if text is not None:
        return json.loads(text)
    readers = layouts.get(stored.get(SHAPE_KEY)) if layouts else None  # type: ignore[arg-type]
    if readers is not None:
        try:
            return rebuild(stored, readers)
        except (KeyError, TypeError, ValueError):  # keys changed by other tools: as is
            pass
    return {k: v for k, v in stored.items() if k not in (JSON_KEY, VALUES_KEY, VECTOR_KEY, SHAPE_KEY) and not k.startswith((PRESENT, LISTED))}


def decode_metadatas(stored: list[dict[str, Any] | None], layouts: dict[str, list] | None = None) -> list[dict[str, Any]]:
    """:func:`decode_metadata` for many records (``%j`` texts parsed in one go)."""
    texts = [m.get(JSON_KEY) if m else None for m in stored]
    if texts and all(isinstance(t, str) for t in texts):
        return json.loads("[" + ",".join(texts) + "]")  # type: ignore[arg-type]
    return [decode_metadata(m, layouts) for m in stored]


def decode_vector(stored: dict[str, Any] | None, vector: Any) -> np.ndarray | None:
    """The stored copy of the vector if there is one, else Chroma's ``vector`` (None if neither)."""
    copy = _single((stored or {}).get(VECTOR_KEY))
    if copy is not None:
        return decode_copy(copy)
    return None if vector is None else np.asarray(vector, dtype=np.float32)


def decode_vectors(stored: list[dict[str, Any] | None], vectors: Any) -> list[np.ndarray | None]:
    """:func:`decode_vector` for many records at once (the copies decoded in one numpy call)."""
    out = decode_copies([_single(m.get(VECTOR_KEY)) if m else None for m in stored])
    if vectors is None or all(v is not None for v in out):
        return out
    if all(v is None for v in out) and all(v is not None for v in vectors) and len({len(v) for v in vectors}) == 1:  # one conversion
        return list(np.asarray(vectors, dtype=np.float32))
    return [v if v is not None or vectors[i] is None else np.asarray(vectors[i], dtype=np.float32) for i, v in enumerate(out)]


def _single(value: Any) -> str | None:
    """The text of a ``%j``/``%x`` value: a one-element list, or a string (as written before)."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None  # more than one: not ours to trust
    return value if isinstance(value, str) else None


# ---- where ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A Chroma ``where`` (``None``: every node) and whether it matches exactly the filter."""

    clause: dict[str, Any] | None
    exact: bool


def to_where(node: FilterNode | None, lists: bool = True, shapes: Mapping[str, frozenset[str]] | None = None) -> Where:
    """Translate a parsed filter; when not ``exact``, ``clause`` selects a superset.

    ``lists=False`` promises that no node holds a list (see the module docstring):
    the clauses for list elements are left out. ``shapes`` (format 3: the registered
    shapes, see chroma_shapes.py) tests presence by shape instead of by marker.
    """
    return Where(None, True) if node is None else _translate(node, False, lists, shapes)


def needs_shapes(node: FilterNode | None) -> bool:
    """Whether translating ``node`` tests for presence: ``exists``, or a range on strings."""
    return any(isinstance(leaf, Exists) or (isinstance(leaf, Range) and not leaf.is_numeric) for leaf in filter_leaves(node))


def needs_list_check(node: FilterNode | None) -> bool:
    """Whether knowing that no node holds a list pays for ``node``: it has a numeric range, which
    is then exact, without an ``$or`` on list markers that makes Chroma several times slower.
    (Equality clauses lose a ``$contains`` branch too, which saves little.)"""
    return any(isinstance(leaf, Range) and leaf.is_numeric for leaf in filter_leaves(node))


def _translate(node: FilterNode, negate: bool, lists: bool, shapes: Mapping[str, frozenset[str]] | None) -> Where:
    if isinstance(node, Not):
        return _translate(node.child, not negate, lists, shapes)
    if isinstance(node, (And, Or)):
        parts = [_translate(child, negate, lists, shapes) for child in node.children]
        return _conjunction(parts) if isinstance(node, And) != negate else _disjunction(parts)
    if isinstance(node, Exists):
        return _present(field_key(node.path), node.value != negate, shapes)
    if isinstance(node, Compare):
        return _compare(node, _INVERSE[node.op] if negate else node.op, lists)
    if isinstance(node, Range) and not negate:
        return _range(node, lists, shapes)
    return Where(None, False)  # a negated range: no native form


def _present(name: str, present: bool, shapes: Mapping[str, frozenset[str]] | None) -> Where:
    if shapes is not None:
        return Where(exists_clause(name, present, shapes), False)
    return Where({PRESENT + name: True} if present else {PRESENT + name: {"$ne": True}}, True)


def _all(clauses: list[dict]) -> dict | None:
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _any(clauses: list[dict]) -> dict:
    return _NOTHING if not clauses else clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _conjunction(parts: list[Where]) -> Where:
    return Where(_all([p.clause for p in parts if p.clause is not None]), all(p.exact for p in parts))


def _disjunction(parts: list[Where]) -> Where:
    if any(p.clause is None for p in parts):
        return Where(None, False)
    return Where(_any([p.clause for p in parts]), all(p.exact for p in parts))  # type: ignore[misc]


def _compare(node: Compare, op: str, lists: bool) -> Where:
    values = (node.value,) if op in ("eq", "ne") else node.value
    canonical = [_canonical(v) for v in values]
    if any(c is None for c in canonical):
        return Where(None, False)  # a number beyond float range: leave it to the post-filter
    name = field_key(node.path)
    groups: dict[type, list] = {}
    for value in canonical:  # grouped by type first: True == 1.0 in Python, not in the filters
        group = groups.setdefault(type(value), [])
        if value not in group:
            group.append(value)
    positive = op in ("eq", "in")
    clauses = []
    for group in groups.values():
        if len(group) == 1:
            clauses.append({name: group[0] if positive else {"$ne": group[0]}})
        else:
            clauses.append({name: {"$in" if positive else "$nin": group}})
    contains = "$contains" if positive else "$not_contains"
    for group in groups.values() if lists else ():
        clauses.extend({VALUES_KEY: {contains: json.dumps([name, v])}} for v in group)
    if positive:
        return Where(_any(clauses), True)
    return Where(_all(clauses), True)


def _range(node: Range, lists: bool, shapes: Mapping[str, frozenset[str]] | None) -> Where:
    name = field_key(node.path)
    if not node.is_numeric:  # Chroma compares numbers only: nodes that have the field are candidates
        return Where(_present(name, True, shapes).clause, False)
    bounds = {op: _number(bound) for op, bound in node.bounds().items()}
    if any(b is None for b in bounds.values()):
        return Where(None, False)
    scalar = _all([{name: {f"${op}": bound}} for op, bound in bounds.items()])
    if not lists:  # numbers are stored as floats, compared as floats: exact
        return Where(scalar, True)
    return Where({"$or": [scalar, {LISTED + name: True}]}, False)
