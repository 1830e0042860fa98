"""Portable filters as Qdrant ``Filter`` objects, with the exact semantics of ``vecbook.filters``.

Filters never read the user's ``metadata`` payload: Qdrant's key syntax cannot name every
key (a dot nests, a server refuses ``"`` and ``\\`` even quoted), it compares numbers as
float64, and it has no instants of our dates. Each write stores, beside it, the values a
filter can see under ``_f`` (:func:`filter_fields`), one flat key per kind and path:

==============  ===============================================================================
key             holds, for the values of one path
==============  ===============================================================================
``s_<path>``    the strings (``MatchValue``/``MatchAny`` compare them exactly)
``b_<path>``    the booleans
``n_<path>``    the numbers that are exactly a float64 (every float, ints up to 2**53 and more)
``N_<path>``    the other ints (beyond 2**53), as ``{"h": float64, "r": exact rest}`` objects
``t_<path>``    the instants of the strings that are ISO dates (``iso_instant``), as ``n``
``T_<path>``    instants beyond 2**53 microseconds (before 1685, after 2255), as ``N``
==============  ===============================================================================

``<path>`` spells the path in the characters every Qdrant key parser accepts: letters,
digits and ``_`` as they are, any other character as ``-<hex code point>-``, segments
joined by ``--`` (``file.name`` is ``file-2e-name``; ``file`` → ``name`` is ``file--name``).

How each form maps:

- strings, booleans: ``MatchValue`` / ``MatchAny`` on ``s_``, ``MatchValue`` on ``b_``;
- numbers: ``Range`` on ``n_`` with bounds moved to the nearest float64 on the safe side
  (exact, since every value there is a float64) OR-ed with a condition on ``N_``: a ``Range``
  on ``h`` where the operand's float64 is below 2**53 (no big int can tie with it), else a
  ``Nested`` condition comparing ``(h, r)`` pairs, which order like the numbers
  (:func:`vecbook.filters.number_parts`); equality likewise;
- date ranges: the same on ``t_`` / ``T_`` with the bounds' instants;
- ``ne`` / ``nin`` / ``$not``: ``must_not`` of the positive form, an exact complement
  (``MatchExcept`` is not: it never matches a missing field);
- ``exists``: a ``MatchValue`` on the ``_present`` payload list that every write stores
  (:func:`present_tokens`); Qdrant's ``IsEmpty``/``IsNull`` treat ``{}`` and lists of
  nulls differently from vecbook;
- string ranges have no Qdrant form: they become "the field is present" where a superset
  is needed and "nothing" where a subset is (under a negation), and the caller
  post-filters with :func:`vecbook.filters.filter_mask`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

from qdrant_client import models

from ...filters import And, Compare, Exists, FilterNode, Not, Or, Path, Range, iso_instant, number_parts

__all__ = ["METADATA_KEY", "PRESENT_KEY", "FIELDS_KEY", "QueryPlan", "plan_filter", "present_tokens", "filter_payload", "filter_fields", "field_name", "index_schemas"]

METADATA_KEY = "metadata"
PRESENT_KEY = "_present"
FIELDS_KEY = "_f"

_EXACT = 2.0**53  # below this, no float64 is the float64 of an int it does not equal

Native = Union[models.Condition, bool]  # True / False: matches every / no point


@dataclass(frozen=True)
class QueryPlan:
    """``filter`` to send (``None``: no filter); ``empty``: nothing can match;
    ``exact``: the native filter is the whole filter, otherwise post-filter the hits."""

    filter: models.Filter | None
    empty: bool = False
    exact: bool = True


def plan_filter(node: FilterNode | None) -> QueryPlan:
    """Translate a parsed filter; where not exact, ``filter`` matches a superset."""
    if node is None:
        return QueryPlan(None)
    native, exact = _translate(node, superset=True)
    if native is False:
        return QueryPlan(None, empty=True, exact=exact)
    if native is True:
        return QueryPlan(None, exact=exact)
    return QueryPlan(native if isinstance(native, models.Filter) else models.Filter(must=[native]), exact=exact)


# ---- what a write stores -------------------------------------------------------------------


def present_tokens(metadata: Mapping[str, Any]) -> list[str]:
    """One token per path where ``field_present`` holds: the ``_present`` payload list."""
    return filter_payload(metadata)[0]


def filter_fields(metadata: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The ``_f`` payload of one node's (JSON-clean) metadata."""
    return filter_payload(metadata)[1]


def filter_payload(metadata: Mapping[str, Any]) -> tuple[list[str], dict[str, list[Any]]]:
    """``(_present tokens, _f fields)`` of one node's metadata, in one walk."""
    tokens: list[str] = []
    fields: dict[str, list[Any]] = {}

    def add(kind: str, path: Path, value: Any) -> None:
        fields.setdefault(_field(kind, path), []).append(value)

    def number(kind: str, path: Path, value: int | float) -> None:
        high, rest = number_parts(value)
        if rest:
            add(kind.upper(), path, {"h": high, "r": rest})
        else:
            add(kind, path, high + 0.0)  # + 0.0: -0.0 is 0.0

    def scalar(path: Path, value: Any) -> None:
        if isinstance(value, str):
            add("s", path, value)
            instant = iso_instant(value)
            if instant is not None:
                number("t", path, instant)
        elif isinstance(value, bool):
            add("b", path, value)
        elif isinstance(value, (int, float)):
            number("n", path, value)

    def walk(value: Mapping[str, Any], path: Path, prefix: str) -> None:
        for key, item in value.items():
            if item is None or (isinstance(item, (list, tuple)) and not any(v is not None for v in item)):
                continue  # absent, as field_present has it; so is {}, below
            here, head = (*path, key), prefix + _encoded(key)
            if isinstance(item, dict):
                if item:
                    tokens.append(head + "]")
                    walk(item, here, head + ",")
                continue
            tokens.append(head + "]")
            if isinstance(item, (list, tuple)):
                for element in item:
                    scalar(here, element)
            else:
                scalar(here, item)

    walk(metadata, (), "[")
    return tokens, fields


_PLAIN = re.compile(r"[A-Za-z0-9_]*")


@lru_cache(maxsize=4096)  # metadata keys repeat from node to node
def field_name(path: Path) -> str:
    """``<path>`` as ``_f`` keys spell it: ``[A-Za-z0-9_]`` kept, other characters as
    ``-<hex>-``, segments joined by ``--`` (one-to-one, and a key every Qdrant parser reads)."""
    return "--".join(part if _PLAIN.fullmatch(part) else "".join(c if _PLAIN.fullmatch(c) else f"-{ord(c):x}-" for c in part) for part in path)


@lru_cache(maxsize=4096)
def _field(kind: str, path: Path) -> str:
    return f"{kind}_{field_name(path)}"


def _key(kind: str, path: Path) -> str:
    return f"{FIELDS_KEY}.{_field(kind, path)}"


@lru_cache(maxsize=4096)
def _encoded(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


# ---- payload indexes ----------------------------------------------------------------------


def index_schemas(native: models.Filter | None) -> dict[str, models.PayloadSchemaType]:
    """The payload index each key of a native filter needs (server mode): the type serving its condition,
    as Qdrant's strict mode requires (lib/collection/src/problems/unindexed_field.rs); keys under a
    ``Nested`` condition as ``<key>[].<inner key>``.

    A match on a string needs a keyword index, on a bool a bool one, on an int an integer one; a range
    a float one; ``is_empty`` any index, the one of its kind (``s``, ``b``: keyword, bool; numbers and
    instants: float).
    """
    found: dict[str, models.PayloadSchemaType] = {}
    _needs(native, "", found)
    return found


def _needs(native: Any, prefix: str, found: dict[str, models.PayloadSchemaType]) -> None:
    if isinstance(native, models.Filter):
        for part in (native.must, native.should, native.must_not):
            for condition in part if isinstance(part, list) else [part] if part is not None else []:
                _needs(condition, prefix, found)
    elif isinstance(native, models.NestedCondition):
        _needs(native.nested.filter, f"{prefix}{native.nested.key}[].", found)
    elif isinstance(native, models.IsEmptyCondition):
        found.setdefault(prefix + native.is_empty.key, _kind_schema(native.is_empty.key))
    elif isinstance(native, models.FieldCondition):
        found.setdefault(prefix + native.key, _condition_schema(native))


def _condition_schema(condition: models.FieldCondition) -> models.PayloadSchemaType:
    match = condition.match
    value = match.value if isinstance(match, models.MatchValue) else next(iter(match.any), "") if isinstance(match, models.MatchAny) else None
    if isinstance(value, bool):
        return models.PayloadSchemaType.BOOL
    if isinstance(value, int):
        return models.PayloadSchemaType.INTEGER
    if isinstance(value, str):
        return models.PayloadSchemaType.KEYWORD
    return models.PayloadSchemaType.FLOAT  # a range


def _kind_schema(key: str) -> models.PayloadSchemaType:
    kind = key[len(FIELDS_KEY) + 1] if key.startswith(FIELDS_KEY + ".") else None
    if kind == "s" or key == PRESENT_KEY:
        return models.PayloadSchemaType.KEYWORD
    if kind == "b":
        return models.PayloadSchemaType.BOOL
    return models.PayloadSchemaType.FLOAT


# ---- translation ------------------------------------------------------------------


def _translate(node: FilterNode, superset: bool) -> tuple[Native, bool]:
    """An exact condition, or else a superset (``superset``) / subset (not) of the matches."""
    if isinstance(node, (And, Or)):
        parts = [_translate(child, superset) for child in node.children]
        exact = all(e for _, e in parts)
        return _join([p for p, _ in parts], "must" if isinstance(node, And) else "should"), exact
    if isinstance(node, Not):
        inner, exact = _translate(node.child, not superset)
        return _negate(inner), exact
    if isinstance(node, Exists):
        match = _present_condition(node.path)
        return (match if node.value else _negate(match)), True
    if isinstance(node, Compare) and node.op in ("ne", "nin"):
        inner, exact = _translate(Compare(node.path, "eq" if node.op == "ne" else "in", node.value), not superset)
        return _negate(inner), exact
    if isinstance(node, Range):
        if node.kind == "number":
            return _number_range("n", node.path, node.bounds()), True
        if node.kind == "date":
            return _number_range("t", node.path, node.instants), True
        # Not expressible: any match needs a present value, so "present" is a superset.
        return (_present_condition(node.path) if superset else False), False
    values = (node.value,) if node.op == "eq" else node.value
    return _join(_one_of(node.path, values), "should"), True


def _one_of(path: Path, values: tuple[Any, ...]) -> list[Native]:
    strings = list(dict.fromkeys(v for v in values if isinstance(v, str)))
    bools = list(dict.fromkeys(v for v in values if isinstance(v, bool)))
    numbers = list(dict.fromkeys(v for v in values if not isinstance(v, (str, bool))))  # 1 and 1.0: one key
    conditions: list[Native] = []
    if len(strings) == 1:
        conditions.append(models.FieldCondition(key=_key("s", path), match=models.MatchValue(value=strings[0])))
    elif strings:
        conditions.append(models.FieldCondition(key=_key("s", path), match=models.MatchAny(any=strings)))
    conditions += [models.FieldCondition(key=_key("b", path), match=models.MatchValue(value=b)) for b in bools]
    conditions += [_number_equal("n", path, x) for x in numbers]
    return conditions


_STRICT = {"gt": "gt", "gte": "gt", "lt": "lt", "lte": "lt"}


def _number_equal(kind: str, path: Path, value: int | float) -> Native:
    """Values of ``path`` (numbers for kind ``n``, instants for ``t``) equal to ``value``, exactly."""
    high, rest = number_parts(value)
    if rest == 0:  # a float64 exactly: no (h, r) pair can equal it
        return models.FieldCondition(key=_key(kind, path), range=models.Range(gte=high, lte=high))
    return _nested(kind, path, [_pair("h", "gte", high, "lte"), _pair("r", "gte", rest, "lte")])


def _number_range(kind: str, path: Path, bounds: Mapping[str, int | float]) -> Native:
    """Values of ``path`` (numbers for kind ``n``, instants for ``t``) within every bound, exactly."""
    on_floats: dict[str, float] = {}  # for float64 values: each bound moved to a float64 on its safe side
    on_h: dict[str, float] = {}  # for (h, r) pairs, while comparing h alone decides
    on_pairs: list[Native] = []  # for (h, r) pairs: one condition per bound
    for op, value in bounds.items():
        high, rest = number_parts(value)
        if rest == 0 or (rest > 0) == (op in ("gt", "lte")):
            on_floats[op] = high  # value itself, or the largest float64 below it for gt/lte, the smallest above for gte/lt
        else:
            on_floats[op] = math.nextafter(high, math.inf if rest > 0 else -math.inf)
        if abs(high) < _EXACT:  # no pair has this h, so h decides
            on_h[op] = high
            on_pairs.append(_pair("h", op, high))
        else:  # h beyond, or h equal and r within
            tie = models.Filter(must=[_pair("h", "gte", high, "lte"), _pair("r", op, rest)])
            on_pairs.append(models.Filter(should=[_pair("h", _STRICT[op], high), tie]))
    floats = models.FieldCondition(key=_key(kind, path), range=models.Range(**on_floats))
    if len(on_h) == len(bounds):
        pairs: Native = models.FieldCondition(key=_key(kind.upper(), path) + "[].h", range=models.Range(**on_h))
    else:
        pairs = _nested(kind, path, on_pairs)
    return _join([floats, pairs], "should")


def _pair(key: str, op: str, value: float, also: str | None = None) -> models.FieldCondition:
    """A condition on one member of an (h, r) object: ``key op value`` (and ``key also value``)."""
    bounds = {op: value} if also is None else {op: value, also: value}
    return models.FieldCondition(key=key, range=models.Range(**bounds))


def _nested(kind: str, path: Path, conditions: list[Native]) -> models.NestedCondition:
    return models.NestedCondition(nested=models.Nested(key=_key(kind.upper(), path), filter=models.Filter(must=conditions)))


def _present_condition(path: Path) -> models.FieldCondition:
    return models.FieldCondition(key=PRESENT_KEY, match=models.MatchValue(value=_token(path)))


def _token(path: Path) -> str:
    return "[" + ",".join(map(_encoded, path)) + "]"


def _join(parts: list[Native], clause: str) -> Native:
    """``parts`` under one ``clause``: "must" (all of them) or "should" (any), constants folded away.

    The constant that decides the whole (False for "must", True for "should") wins; the other drops out."""
    deciding = clause == "should"
    if any(p is deciding for p in parts):
        return deciding
    parts = [p for p in parts if p is not (not deciding)]
    if not parts:
        return not deciding
    return parts[0] if len(parts) == 1 else models.Filter(**{clause: parts})


def _negate(part: Native) -> Native:
    if isinstance(part, bool):
        return not part
    return models.Filter(must_not=[part])
