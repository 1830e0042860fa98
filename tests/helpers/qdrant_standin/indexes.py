"""Payload indexes, which local mode does not keep: ``payload_schema`` and the facets that need them.

On a server a facet reads one payload index of its key (keyword, integer, bool or
uuid; without one the request is a 400) and so counts the values of that type only, as
the index holds them: a keyword index keeps strings verbatim, a uuid index parses them.
Local mode's facet counts every value and prints any UUID-like string in canonical form,
so the stand-in counts itself: the points the engine's filter matches, their values by
the engine's own ``value_by_key``, each once per point, most frequent first and ties by
value (the order local mode and the server share).
"""

from __future__ import annotations

import uuid
from typing import Any

from qdrant_client.http import models
from qdrant_client.local.payload_value_extractor import value_by_key

from .errors import bad_request

_FACETABLE = ("keyword", "integer", "bool", "uuid")


def _kind(schema: Any) -> str:
    """"keyword", "integer", ... from a PayloadSchemaType or a *IndexParams."""
    kind = getattr(schema, "type", schema)
    return kind.value if hasattr(kind, "value") else str(kind)


def _holds(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if not isinstance(value, str):
        return False
    if kind == "uuid":
        try:
            uuid.UUID(value)
        except ValueError:
            return False
    return True


class PayloadIndexes:
    def __init__(self) -> None:
        self._by_collection: dict[str, dict[str, Any]] = {}

    def create(self, collection: str, field: str, schema: Any) -> None:
        self._by_collection.setdefault(collection, {})[field] = schema

    def of(self, collection: str) -> dict[str, Any]:
        """The collection's indexes: key -> schema as created."""
        return self._by_collection.get(collection, {})

    def drop(self, collection: str) -> None:
        self._by_collection.pop(collection, None)

    def schema(self, collection: str, local: Any) -> dict[str, models.PayloadIndexInfo]:
        """``payload_schema`` of the collection: each index with the number of points holding its key."""
        found = {}
        for field, schema in self._by_collection.get(collection, {}).items():
            holding = models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=field))])
            params = None if isinstance(schema, models.PayloadSchemaType) else schema
            found[field] = models.PayloadIndexInfo(data_type=_kind(schema), params=params, points=local.count(holding).count)
        return found

    def facet_kind(self, collection: str, key: str) -> str:
        schema = self._by_collection.get(collection, {}).get(key)
        if schema is None or _kind(schema) not in _FACETABLE:
            raise bad_request(
                f'Index required but not found for "{key}" of one of the following types: [{", ".join(_FACETABLE)}]. '
                "Help: Create an index for this key or use a different filter."
            )
        return _kind(schema)

    def facet(self, kind: str, local: Any, key: str, where: models.Filter | None, limit: int) -> models.FacetResponse:
        """The facet over the index of type ``kind`` on ``key`` (``local``: the engine's collection)."""
        records, _ = local.scroll(scroll_filter=where, limit=max(1, len(local.payload)), with_payload=True)
        counts: dict[Any, int] = {}
        for record in records:
            values = value_by_key(record.payload or {}, key) or []
            held = {str(uuid.UUID(v)) if kind == "uuid" else v for v in values if _holds(kind, v)}
            for value in held:
                counts[value] = counts.get(value, 0) + 1
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return models.FacetResponse(hits=[models.FacetValueHit(value=value, count=count) for value, count in ordered])
