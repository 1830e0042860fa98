"""Portable filters as Qdrant ``Filter`` objects, with the exact semantics of ``vecbook.filters``.

A field ``a.b`` is the payload key ``metadata.a.b`` (parts quoted where Qdrant needs it).
How each form maps:

- string / bool equality: ``MatchValue`` (Qdrant matches strings exactly and keeps
  booleans apart from numbers, as we do);
- number equality: ``Range(gte=v, lte=v)``: ``MatchValue`` would miss float payloads
  (``1 == 1.0``) and Qdrant ranges never match booleans or strings;
- ``in``: ``MatchAny`` for the strings, one condition per bool or number, OR-ed;
- numeric ranges: ``Range`` (Qdrant checks every bound on one value of a list);
- ``ne`` / ``nin`` / ``$not``: ``must_not`` of the positive form, an exact complement
  (``MatchExcept`` is not: it never matches a missing field);
- ``exists``: a ``MatchValue`` on the ``_present`` payload list that every write stores
  (:func:`present_tokens`); Qdrant's ``IsEmpty``/``IsNull`` treat ``{}`` and lists of
  nulls differently from vecbook.
- string ranges (ISO dates) have no exact Qdrant form (``DatetimeRange`` parses,
  ours compares code points), nor do keys containing ``"``: they become "the field is
  present" where a superset is needed and "nothing" where a subset is (under a
  negation), and the caller post-filters with :func:`vecbook.filters.filter_mask`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

from qdrant_client import models

from ...filters import And, Compare, Exists, FilterNode, Not, Or, Path, Range

__all__ = ["METADATA_KEY", "PRESENT_KEY", "QueryPlan", "plan_filter", "present_tokens", "payload_key", "index_schemas"]

METADATA_KEY = "metadata"
PRESENT_KEY = "_present"

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")

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


def present_tokens(metadata: Mapping[str, Any]) -> list[str]:
    """One token per path where ``field_present`` holds: the ``_present`` payload list."""
    tokens: list[str] = []

    def walk(value: Mapping[str, Any], prefix: str) -> None:
        for key, item in value.items():
            if item is None or (isinstance(item, (list, tuple)) and not any(v is not None for v in item)):
                continue  # absent, as field_present has it; so is {}, below
            head = prefix + _encoded(key)
            if isinstance(item, dict):
                if item:
                    tokens.append(head + "]")
                    walk(item, head + ",")
            else:
                tokens.append(head + "]")

    walk(metadata, "[")
    return tokens


def payload_key(path: Path) -> str | None:
    """The Qdrant JSON path of a metadata field, or ``None`` if Qdrant cannot name it."""
    parts = [METADATA_KEY]
    for part in path:
        if _PLAIN_KEY.fullmatch(part):
            parts.append(part)
        elif '"' not in part:
            parts.append(f'"{part}"')
        else:
            return None
    return ".".join(parts)


def index_schemas(node: FilterNode | None) -> dict[str, models.PayloadSchemaType]:
    """Payload index types that serve a filter's native conditions (server mode).

    Each index type answers only the conditions we build for it (keyword: string
    matches; float: numeric ranges, which cover ints too; bool: bool matches), and
    Qdrant checks other conditions on that field against the payload, so any one
    index on a field keeps the semantics.
    """
    found: dict[str, models.PayloadSchemaType] = {}

    def visit(n: FilterNode) -> None:
        if isinstance(n, (And, Or)):
            for child in n.children:
                visit(child)
        elif isinstance(n, Not):
            visit(n.child)
        elif isinstance(n, (Compare, Range)):
            key = payload_key(n.path)
            kind = _value_kind(n)
            if key is not None and kind is not None:
                found.setdefault(key, kind)

    if node is not None:
        visit(node)
    return found


# ---- translation ------------------------------------------------------------------


def _translate(node: FilterNode, superset: bool) -> tuple[Native, bool]:
    """An exact condition, or else a superset (``superset``) / subset (not) of the matches."""
    if isinstance(node, (And, Or)):
        parts = [_translate(child, superset) for child in node.children]
        exact = all(e for _, e in parts)
        return (_all if isinstance(node, And) else _any)([p for p, _ in parts]), exact
    if isinstance(node, Not):
        inner, exact = _translate(node.child, not superset)
        return _negate(inner), exact
    if isinstance(node, Exists):
        match = _present_condition(node.path)
        return (match if node.value else _negate(match)), True
    if isinstance(node, Compare) and node.op in ("ne", "nin"):
        inner, exact = _translate(Compare(node.path, "eq" if node.op == "ne" else "in", node.value), not superset)
        return _negate(inner), exact
    key = payload_key(node.path)
    if key is None or (isinstance(node, Range) and not node.is_numeric):
        # Not expressible: any match needs a present value, so "present" is a superset.
        return (_present_condition(node.path) if superset else False), False
    if isinstance(node, Range):
        return models.FieldCondition(key=key, range=models.Range(**node.bounds())), True
    values = (node.value,) if node.op == "eq" else node.value
    return _any(_one_of(key, values)), True


def _one_of(key: str, values: tuple[Any, ...]) -> list[models.Condition]:
    strings = list(dict.fromkeys(v for v in values if isinstance(v, str)))
    bools = list(dict.fromkeys(v for v in values if isinstance(v, bool)))
    numbers = list(dict.fromkeys(float(v) for v in values if not isinstance(v, (str, bool))))
    conditions: list[models.Condition] = []
    if len(strings) == 1:
        conditions.append(models.FieldCondition(key=key, match=models.MatchValue(value=strings[0])))
    elif strings:
        conditions.append(models.FieldCondition(key=key, match=models.MatchAny(any=strings)))
    conditions += [models.FieldCondition(key=key, match=models.MatchValue(value=b)) for b in bools]
    conditions += [models.FieldCondition(key=key, range=models.Range(gte=x, lte=x)) for x in numbers]
    return conditions


def _present_condition(path: Path) -> models.FieldCondition:
    return models.FieldCondition(key=PRESENT_KEY, match=models.MatchValue(value=_token(path)))


def _token(path: Path) -> str:
    return "[" + ",".join(map(_encoded, path)) + "]"


@lru_cache(maxsize=4096)
def _encoded(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def _all(parts: list[Native]) -> Native:
    if any(p is False for p in parts):
        return False
    parts = [p for p in parts if p is not True]
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else models.Filter(must=parts)


def _any(parts: list[Native]) -> Native:
    if any(p is True for p in parts):
        return True
    parts = [p for p in parts if p is not False]
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else models.Filter(should=parts)


def _negate(part: Native) -> Native:
    if isinstance(part, bool):
        return not part
    return models.Filter(must_not=[part])


def _value_kind(node: Compare | Range) -> models.PayloadSchemaType | None:
    if isinstance(node, Range):
        return models.PayloadSchemaType.FLOAT if node.is_numeric else None
    values = (node.value,) if node.op in ("eq", "ne") else node.value
    if not values:
        return None
    first = values[0]
    if isinstance(first, bool):
        return models.PayloadSchemaType.BOOL
    if isinstance(first, str):
        return models.PayloadSchemaType.KEYWORD
    return models.PayloadSchemaType.FLOAT
