"""Portable filters on Elasticsearch: metadata as typed keyword terms, filter trees as bool queries.

Metadata is stored twice. ``metadata`` keeps the user's object exactly (an
``object`` field with ``enabled: false``, never indexed, so no mapping conflicts
and no field-count limit), and ``filter_terms`` (one ``keyword`` field) holds one
term per (path, value) that a filter can see, following vecbook.filters:

=========  ====================================  =====================================
kind       term                                  what it encodes
=========  ====================================  =====================================
``s``      ``s["a","b"]`` + the string           a string value of ``a.b``
``n``      ``n["a","b"]`` + 19 hex digits        a number: see :func:`_number_key`
``t``      ``t["a","b"]`` + 19 hex digits        the instant of a string that is an ISO
                                                 date (``iso_instant``), as a number
``b``      ``b["a","b"]`` + ``0``/``1``          a boolean
``p``      ``p["a","b"]``                        ``a.b`` is present (filters.field_present)
=========  ====================================  =====================================

The JSON-encoded path makes every prefix unambiguous (``["file.name"]`` is not
``["file","name"]``), so a range of one path is a range of terms that no other path can
fall into; numbers, strings and booleans never meet (``1 == 1.0``, ``"1" != 1``,
``True != 1``), and ES's "a multi-valued field matches if any value matches" is exactly
the portable semantics. Number keys sort like the numbers, exactly (int64 and float64
alike), so numeric and date ranges are keyword ranges; string ranges compare by UTF-8
bytes, that is by code point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from typing import Any

from ...errors import ValidationError
from ...filters import And, Exists, FilterNode, Not, Or, Path, Range, iso_instant, number_parts

__all__ = ["FIELD", "filter_terms", "to_query"]

FIELD = "filter_terms"
# Lucene refuses terms over 32766 UTF-8 bytes; longer strings are cut and end in a hash.
MAX_TERM_BYTES = 32000
_HASH_BYTES = 1 + 40
MAX_PATH_BYTES = 8000


@functools.lru_cache(maxsize=4096)  # metadata keys repeat from node to node
def _prefix(kind: str, path: Path) -> str:
    return kind + json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))


def _upper(prefix: str) -> str:
    """The smallest string above every term that starts with ``prefix`` (which ends in ``]``)."""
    return prefix[:-1] + "^"


_REST = 0x800  # added to the rest of an int, |rest| <= 512, to keep it 3 positive hex digits


def _number_key(value: int | float) -> str:
    """19 hex digits that sort like the numbers, exactly: the float64 nearest ``value`` as an
    order-preserving 64-bit key, then the exact int rest (``number_parts``) plus an offset.

    ``1`` and ``1.0`` (and ``-0.0`` and ``0.0``) have one key; ``2**53 + 1`` has its own.
    """
    high, rest = number_parts(value)
    (bits,) = struct.unpack(">Q", struct.pack(">d", high + 0.0))  # + 0.0: -0.0 is 0.0
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}{rest + _REST:03x}"


@functools.lru_cache(maxsize=4096)
def _present_term(path: Path) -> str:
    """The ``p`` term of a path (checked once per path: metadata keys repeat from node to node)."""
    term = _prefix("p", path)
    if len(term.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ValidationError(f"metadata key path {'.'.join(path)[:80]!r}… is too long for Elasticsearch")
    return term


def _string_term(prefix: str, value: str) -> str:
    term = prefix + value
    if len(term) * 4 <= MAX_TERM_BYTES:  # at most 4 UTF-8 bytes a character: short enough
        return term
    encoded = term.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_TERM_BYTES:
        return term
    # Equality stays exact (the hash); ranges stay exact for bounds shorter than the kept part.
    keep = encoded[: MAX_TERM_BYTES - _HASH_BYTES].decode("utf-8", "ignore")
    digest = hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{keep}\x00{digest}"


def _value_term(path: Path, value: Any) -> str:
    if isinstance(value, bool):
        return _prefix("b", path) + ("1" if value else "0")
    if isinstance(value, str):
        return _string_term(_prefix("s", path), value)
    return _prefix("n", path) + _number_key(value)


def _value_terms(path: Path, value: Any) -> list[str]:
    """The terms of one scalar value: its own, and for an ISO date string its instant's."""
    term = _value_term(path, value)
    if isinstance(value, str):
        instant = iso_instant(value)
        if instant is not None:
            return [term, _prefix("t", path) + _number_key(instant)]
    return [term]


def filter_terms(metadata: dict[str, Any]) -> list[str]:
    """The ``filter_terms`` of one node's (JSON-clean) metadata."""
    terms: list[str] = []

    def walk(obj: dict[str, Any], path: Path) -> None:
        for key, value in obj.items():
            here = (*path, key)
            present = _present_term(here)
            if isinstance(value, dict):
                if value:
                    terms.append(present)
                    walk(value, here)
            elif isinstance(value, list):
                if any(v is not None for v in value):
                    terms.append(present)
                for v in value:
                    if isinstance(v, (str, int, float)):
                        terms.extend(_value_terms(here, v))
            elif value is not None:
                terms.append(present)
                terms.extend(_value_terms(here, value))

    walk(metadata, ())
    return list(dict.fromkeys(terms))


# ---- filter tree -> query DSL ----------------------------------------------------------


def to_query(node: FilterNode) -> dict[str, Any]:
    """The ES query (filter context) that matches exactly the nodes ``node`` matches."""
    if isinstance(node, And):
        return {"bool": {"filter": [to_query(c) for c in node.children]}}
    if isinstance(node, Or):
        return {"bool": {"should": [to_query(c) for c in node.children], "minimum_should_match": 1}}
    if isinstance(node, Not):
        return _negate(to_query(node.child))
    if isinstance(node, Exists):
        query = {"term": {FIELD: _prefix("p", node.path)}}
        return query if node.value else _negate(query)
    if isinstance(node, Range):
        return _range(node)
    if node.op in ("eq", "ne"):
        query = {"term": {FIELD: _value_term(node.path, node.value)}}
    else:
        query = {"terms": {FIELD: list(dict.fromkeys(_value_term(node.path, v) for v in node.value))}}
    return query if node.op in ("eq", "in") else _negate(query)


def _negate(query: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": [query]}}


def _range(node: Range) -> dict[str, Any]:
    if node.kind == "string":
        prefix, bounds = _prefix("s", node.path), node.bounds()
        term = lambda bound: _string_term(prefix, bound)  # noqa: E731
    else:  # numbers, or a date range's instants: exact number keys
        prefix = _prefix("n" if node.kind == "number" else "t", node.path)
        bounds = node.bounds() if node.kind == "number" else node.instants
        term = lambda bound: prefix + _number_key(bound)  # noqa: E731
    lower = _tightest([(bounds.get("gt"), False), (bounds.get("gte"), True)], max)
    upper = _tightest([(bounds.get("lt"), False), (bounds.get("lte"), True)], min)
    query = {"gte": prefix} if lower is None else {("gte" if lower[1] else "gt"): term(lower[0])}
    query.update({"lt": _upper(prefix)} if upper is None else {("lte" if upper[1] else "lt"): term(upper[0])})
    return {"range": {FIELD: query}}


def _tightest(candidates: list[tuple[Any, bool]], pick) -> tuple[Any, bool] | None:
    """Of the given (bound, inclusive) pairs, the one that restricts most (exclusive wins a tie)."""
    given = [(b, inclusive) for b, inclusive in candidates if b is not None]
    if not given:
        return None
    best = pick(b for b, _ in given)
    return best, all(inclusive for b, inclusive in given if b == best)
