"""Strict mode's check for unindexed filter keys (``unindexed_filtering_retrieve/update: false``).

A port of Qdrant's lib/collection/src/problems/unindexed_field.rs: each condition of a filter
needs an index of one of some capabilities on its key (nested conditions on ``<key>[].<inner
key>``); ``is_empty``/``is_null``/``values_count`` accept any index; ``has_id`` needs none.
A key without a fitting index refuses the request with a 400 naming it and the index types
that would serve it. Qdrant Cloud turns strict mode on for its collections; a self-hosted
server when its config or the collection's ``strict_mode_config`` says so.
"""

from __future__ import annotations

from typing import Any

from qdrant_client.http import models

from .errors import bad_request

_ALL = {"int_match", "int_range", "keyword_match", "float_range", "text", "bool_match", "uuid_match", "uuid_range", "datetime_range", "geo"}
# The schema a user would create for each capability, in the error's list of suggestions.
_SCHEMA_OF = {"int_match": "integer", "int_range": "integer", "keyword_match": "keyword", "float_range": "float", "text": "text",
              "bool_match": "bool", "uuid_match": "uuid", "uuid_range": "uuid", "datetime_range": "datetime", "geo": "geo"}


def _capabilities(schema: Any) -> set[str]:
    kind = getattr(schema, "type", schema)
    kind = kind.value if hasattr(kind, "value") else str(kind)
    if kind == "integer":
        found = set()
        if getattr(schema, "lookup", None) is not False:
            found.add("int_match")
        if getattr(schema, "range", None) is not False:
            found.add("int_range")
        return found
    return {"keyword": {"keyword_match"}, "uuid": {"uuid_match", "uuid_range"}, "bool": {"bool_match"}, "float": {"float_range"},
            "geo": {"geo"}, "text": {"text"}, "datetime": {"datetime_range"}}.get(kind, set())


def _strings(values: list[Any]) -> set[str]:
    import uuid

    def is_uuid(v: str) -> bool:
        try:
            uuid.UUID(v)
            return True
        except ValueError:
            return False

    return ({"uuid_match"} if all(is_uuid(v) for v in values) else set()) | {"keyword_match"}


def _required(condition: models.FieldCondition) -> set[str]:
    needed: set[str] = set()
    match = condition.match
    if isinstance(match, models.MatchValue):
        value = match.value
        needed |= {"bool_match"} if isinstance(value, bool) else {"int_match"} if isinstance(value, int) else _strings([value])
    elif isinstance(match, (models.MatchAny, models.MatchExcept)):
        values = list(match.any if isinstance(match, models.MatchAny) else match.except_)
        if values:
            needed |= _strings(values) if isinstance(values[0], str) else {"int_match"}
    elif match is not None:
        needed |= {"text"}
    if isinstance(condition.range, models.DatetimeRange):
        needed |= {"datetime_range"}
    elif condition.range is not None:
        needed |= {"float_range", "int_range"}
    if condition.geo_bounding_box or condition.geo_radius or condition.geo_polygon:
        needed |= {"geo"}
    if condition.values_count is not None or condition.is_empty is not None or condition.is_null is not None:
        needed |= _ALL
    return needed


def _conditions(flt: models.Filter) -> list[Any]:
    found: list[Any] = []
    for part in (flt.must, flt.should, flt.must_not):
        found += part if isinstance(part, list) else [part] if part is not None else []
    if flt.min_should is not None:
        found += flt.min_should.conditions
    return found


def unindexed(flt: models.Filter | None, schema: dict[str, Any], prefix: str = "") -> tuple[str, set[str]] | None:
    """The first key of ``flt`` with no index that could serve it, and the capabilities it needs."""
    for condition in _conditions(flt) if flt is not None else []:
        if isinstance(condition, models.Filter):
            found = unindexed(condition, schema, prefix)
        elif isinstance(condition, models.NestedCondition):
            found = unindexed(condition.nested.filter, schema, f"{prefix}{condition.nested.key}[].")
        elif isinstance(condition, (models.IsEmptyCondition, models.IsNullCondition)):
            key = condition.is_empty.key if isinstance(condition, models.IsEmptyCondition) else condition.is_null.key
            found = _check(prefix + key, _ALL, schema)
        elif isinstance(condition, models.FieldCondition):
            found = _check(prefix + condition.key, _required(condition), schema)
        else:  # has_id, has_vector: no index needed
            found = None
        if found is not None:
            return found
    return None


def _check(key: str, needed: set[str], schema: dict[str, Any]) -> tuple[str, set[str]] | None:
    if not needed or (key in schema and needed & _capabilities(schema[key])):
        return None
    return key, needed


def refuse_unindexed(flt: models.Filter | None, schema: dict[str, Any]) -> None:
    found = unindexed(flt, schema)
    if found is not None:
        key, needed = found
        kinds = ", ".join(sorted({_SCHEMA_OF[c] for c in needed}))
        raise bad_request(
            f'Index required but not found for "{key}" of one of the following types: [{kinds}]. '
            "Help: Create an index for this key or use a different filter."
        )
