"""Chroma metadata and ``where`` clauses that give the portable filters their exact meaning (format 4).

Chroma stores flat metadata (str, int, float, bool and lists of one of those), its
``where`` takes one operator per level, ranges on numbers only, no negation of a
sub-clause and no test for a key's presence, and ``{"f": v}`` never matches a list.
So a node's metadata is stored as the original plus a flat index:

=========  ======================================================================
key        holds
=========  ======================================================================
``%j``     the metadata as inserted, as JSON: what reads return, exactly
``a.b``    each scalar a filter path can reach, under its :func:`chroma_key`:
           segments joined by ``.``, with ``%`` ``.`` ``$`` ``#`` inside a segment
           written ``%25`` ``%2E`` ``%24`` ``%23`` (so the key ``file.name`` is
           ``file%2Ename``, apart from ``name`` in ``file``), and Chroma's reserved
           ``chroma:document`` as ``chroma%3Adocument``. Numbers as floats
``%r.a.b`` numbers of magnitude 2**53 or more: the exact int rest ``v - float(v)``
           (:func:`vecbook.filters.number_parts`), an int; 0 for floats
``%t.a.b`` strings that are ISO dates: their instant, int64 microseconds UTC
``%p``     the keys of the paths present (``exists``), as a list: one key, not a
           marker per path (Chroma reads every key of a hit back: markers made a
           query ~25 % slower, the list ~10 %)
``%v``     list elements as tokens ``json([key, value])`` (numbers as floats where
           a float holds them exactly, else as ints)
``%l.a.b`` True where the path holds a list of scalars: a candidate for any range on it
``%x``     (cosine collections, vectors not stored as given) the vector's float32
           bytes, base64, as a one-element list: see ``layout.py``
=========  ======================================================================

What Chroma 1.5.9 compares exactly, and so what the keys hold: a float operand with
stored floats, an int operand with stored ints (as int64). Mixed, it is not exact (a
float operand is truncated against an int, ``0 == 0.5``; an int operand is rounded to
a float against a float), so numbers are floats and operands are floats, and the few
numbers a float cannot tell apart (beyond 2**53) carry their rest: ``(float, rest)``
pairs compare like the numbers. Instants are ints, compared with int operands.

Reserved keys start with ``%`` and a letter that is no hex digit, so no escaped path
collides with them. While a collection holds no list (its metadata still has
``vecbook:no_lists``, set at creation and removed before the first list is written),
``%v`` and ``%l`` match nothing: :func:`to_where` leaves them out, and ranges are
exact. Keys with an empty segment are in ``%j`` only (no filter names them).

A parsed filter becomes a ``where`` matching exactly the same nodes or, where Chroma
cannot say it (ranges that may hit list elements, ranges on non-date strings, a
negated range), a superset that the caller narrows with
:func:`vecbook.filters.filter_mask` (``Where.exact`` is False). Negations are pushed
down to the leaves and inverted: Chroma's ``$ne``, ``$nin`` and ``$not_contains`` match
nodes without the key, which is exactly vecbook's meaning of ne, nin and ``exists: False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...filters import And, Compare, Exists, FilterNode, Not, Or, Range, filter_leaves, iso_instant, number_parts
from ..engine.vector_copies import decode_copies, decode_copy, encode_copy

__all__ = [
    "Where",
    "to_where",
    "needs_list_check",
    "encode_metadata",
    "has_lists",
    "decode_metadata",
    "decode_metadatas",
    "decode_vector",
    "decode_vectors",
    "chroma_key",
    "JSON_KEY",
    "VECTOR_KEY",
    "EVERYTHING",
    "RESERVED",
]

JSON_KEY, VALUES_KEY, VECTOR_KEY, PRESENT = "%j", "%v", "%x", "%p"
LISTED, REST, INSTANT = "%l.", "%r.", "%t."
SHAPE_KEY = "%s"  # format 3 only
RESERVED = (JSON_KEY, VALUES_KEY, VECTOR_KEY, PRESENT, SHAPE_KEY)  # and every key starting with a prefix below
_PREFIXES = (LISTED, REST, INSTANT, "%p.")  # "%p.": markers of formats 1-3
_NOTHING = {VALUES_KEY: {"$contains": "%"}}  # tokens are JSON arrays, never "%"
EVERYTHING = {VALUES_KEY: {"$not_contains": "%"}}
_INVERSE = {"eq": "ne", "ne": "eq", "in": "nin", "nin": "in"}
_EXACT = 2.0**53  # floats below this in magnitude have no int neighbours they cannot tell apart
_ESCAPES = str.maketrans({"%": "%25", ".": "%2E", "$": "%24", "#": "%23"})


def _segment(part: str) -> str:
    return part.translate(_ESCAPES)


def chroma_key(path: tuple[str, ...]) -> str:
    """The Chroma key of a metadata path (escaped segments joined by ``.``)."""
    key = ".".join(_segment(part) for part in path)
    return "chroma%3Adocument" if key == "chroma:document" else key  # a name Chroma reserves


# ---- metadata ------------------------------------------------------------------------


def encode_metadata(metadata: dict[str, Any], vector: np.ndarray | None = None) -> dict[str, Any]:
    """The Chroma metadata that stores ``metadata`` (JSON-clean, ints int64) and indexes it for
    filters, with a copy of ``vector`` if given."""
    out: dict[str, Any] = {JSON_KEY: json.dumps(metadata, separators=(",", ":"))}
    tokens: list[str] = []
    present: list[str] = []
    _walk(metadata, "", out, tokens, present)
    if present:
        out[PRESENT] = present
    if tokens:
        out[VALUES_KEY] = list(dict.fromkeys(tokens))
    if vector is not None:
        out[VECTOR_KEY] = [encode_copy(vector)]
    return out


def has_lists(encoded: dict[str, Any]) -> bool:
    """Whether metadata encoded by :func:`encode_metadata` indexes any list element (``%p``, a
    list of vecbook's, is not what the collection's ``vecbook:no_lists`` flag is about)."""
    return VALUES_KEY in encoded


def _walk(mapping: dict, prefix: str, out: dict, tokens: list, present: list) -> None:
    for key, value in mapping.items():
        if not key:
            continue  # an empty segment: no filter path reaches it
        path = prefix + _segment(key)
        name = "chroma%3Adocument" if path == "chroma:document" else path  # as chroma_key writes it
        if isinstance(value, dict):
            if value:
                present.append(name)
                _walk(value, path + ".", out, tokens, present)
        elif isinstance(value, list):
            if any(v is not None for v in value):
                present.append(name)
            scalars = [json.dumps([name, _token_value(v)]) for v in value if isinstance(v, (str, int, float, bool))]
            if scalars:
                out[LISTED + name] = True
                tokens.extend(scalars)
        elif value is not None:
            present.append(name)
            if isinstance(value, (str, bool)):
                out[name] = value
                if isinstance(value, str):
                    instant = iso_instant(value)
                    if instant is not None:
                        out[INSTANT + name] = instant
            elif isinstance(value, (int, float)):
                high, rest = number_parts(value)
                out[name] = high + 0.0  # -0.0 as 0.0, which compare equal
                if abs(high) >= _EXACT:
                    out[REST + name] = rest


def _token_value(value: Any) -> Any:
    """A list element as its token holds it: numbers that are equal give the same token."""
    if isinstance(value, (str, bool)):
        return value
    high = float(value) + 0.0
    return high if high == value else int(value)


def decode_metadata(stored: dict[str, Any] | None, layouts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata as inserted, from ``%j``; format-3 records without it by their shape's layout
    (``legacy.py``); records written by other tools: their metadata as is."""
    if not stored:
        return {}
    text = _single(stored.get(JSON_KEY))
    if text is not None:
        return json.loads(text)
    if layouts and stored.get(SHAPE_KEY) in layouts:
        from .legacy import rebuild

        try:
            return rebuild(stored, layouts[stored[SHAPE_KEY]])
        except (KeyError, TypeError, ValueError):  # keys changed by other tools: as is
            pass
    return {k: v for k, v in stored.items() if k not in RESERVED and not k.startswith(_PREFIXES)}


def decode_metadatas(stored: list[dict[str, Any] | None], layouts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
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
    """The text of a ``%j``/``%x`` value: a string, or a one-element list (as vecbook wrote them before)."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None  # more than one: not ours to trust
    return value if isinstance(value, str) else None


# ---- where ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A Chroma ``where`` (``None``: every node) and whether it matches exactly the filter."""

    clause: dict[str, Any] | None
    exact: bool


def to_where(node: FilterNode | None, lists: bool = True) -> Where:
    """Translate a parsed filter; when not ``exact``, ``clause`` selects a superset.

    ``lists=False`` promises that no node holds a list (see the module docstring):
    the clauses for list elements are left out.
    """
    return Where(None, True) if node is None else _translate(node, False, lists)


def needs_list_check(node: FilterNode | None) -> bool:
    """Whether knowing that no node holds a list pays for ``node`` (a look-up of the collection's
    metadata, ~0.5 ms embedded): it has a numeric or date range, which is then exact, or an
    equality, which then needs no ``$or`` with a token look-up (that ``$or`` made reading the 100
    nodes of a term filter at 10k ~3 ms slower)."""
    return any(isinstance(leaf, Compare) or (isinstance(leaf, Range) and leaf.kind != "string") for leaf in filter_leaves(node))


def _translate(node: FilterNode, negate: bool, lists: bool) -> Where:
    if isinstance(node, Not):
        return _translate(node.child, not negate, lists)
    if isinstance(node, (And, Or)):
        parts = [_translate(child, negate, lists) for child in node.children]
        return _conjunction(parts) if isinstance(node, And) != negate else _disjunction(parts)
    if isinstance(node, Exists):
        return Where(_present(chroma_key(node.path), node.value != negate), True)
    if isinstance(node, Compare):
        return _compare(node, _INVERSE[node.op] if negate else node.op, lists)
    if isinstance(node, Range) and not negate:
        return _range(node, lists)
    return Where(None, False)  # a negated range: no native form


def _present(name: str, present: bool) -> dict:
    return {PRESENT: {"$contains" if present else "$not_contains": name}}


def _all(clauses: list[dict]) -> dict | None:
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _any(clauses: list[dict]) -> dict:
    return _NOTHING if not clauses else clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _conjunction(parts: list[Where]) -> Where:
    return Where(_all([p.clause for p in parts if p.clause is not None]), all(p.exact for p in parts))


def _disjunction(parts: list[Where]) -> Where:
    if any(p.clause is None for p in parts):  # every node: exactly so if such a part is exact
        return Where(None, any(p.clause is None and p.exact for p in parts))
    return Where(_any([p.clause for p in parts]), all(p.exact for p in parts))  # type: ignore[misc]


def _compare(node: Compare, op: str, lists: bool) -> Where:
    values = (node.value,) if op in ("eq", "ne") else node.value
    name, positive = chroma_key(node.path), op in ("eq", "in")
    groups: dict[type, list] = {str: [], bool: [], float: []}  # by type: True == 1.0 in Python, not in the filters
    big: list[tuple[float, int]] = []
    tokens: list[str] = []
    for value in values:
        token = json.dumps([name, _token_value(value)])
        if token in tokens:
            continue
        tokens.append(token)
        if isinstance(value, (str, bool)):
            groups[type(value)].append(value)
            continue
        high, rest = number_parts(value)
        high += 0.0
        if abs(high) < _EXACT:
            groups[float].append(high)
        else:
            big.append((high, rest))
    clauses: list[dict] = []
    for group in groups.values():
        if len(group) == 1:
            clauses.append({name: group[0] if positive else {"$ne": group[0]}})
        elif group:
            clauses.append({name: {"$in" if positive else "$nin": group}})
    for high, rest in big:  # the float and the rest: equal both, or differ in one
        if positive:
            clauses.append({"$and": [{name: high}, {REST + name: rest}]})
        else:
            clauses.append({"$or": [{name: {"$ne": high}}, {REST + name: {"$ne": rest}}]})
    if lists:
        contains = "$contains" if positive else "$not_contains"
        clauses.extend({VALUES_KEY: {contains: token}} for token in tokens)
    return Where(_any(clauses) if positive else _all(clauses), True)


def _range(node: Range, lists: bool) -> Where:
    name = chroma_key(node.path)
    if node.kind == "string":  # Chroma compares numbers only: nodes that have the field are candidates
        return Where(_present(name, True), False)
    if node.kind == "date":
        scalar = _all([{INSTANT + name: {f"${op}": instant}} for op, instant in node.instants.items()])
    else:
        scalar = _all([_bound(name, op, bound) for op, bound in node.bounds().items()])
    if not lists:
        return Where(scalar, True)
    return Where({"$or": [scalar, {LISTED + name: True}]}, False)


def _bound(name: str, op: str, bound: int | float) -> dict:
    high, rest = number_parts(bound)
    high += 0.0
    if abs(high) < _EXACT:  # a stored float equal to it is the number itself: floats decide
        return {name: {f"${op}": high}}
    strict = "$gt" if op.startswith("g") else "$lt"
    return {"$or": [{name: {strict: high}}, {"$and": [{name: high}, {REST + name: {f"${op}": rest}}]}]}
