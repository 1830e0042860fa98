"""Distinct values of a metadata field by Qdrant's facet counts over the filter copies (``_f``).

A field's strings are the ``s_<path>`` values and its booleans the ``b_<path>`` values
(``filters.py``): one facet each counts the points holding each value (once per point),
most frequent first, ties by value, and the two lists merge into vecbook's order
(booleans before strings on ties). Qdrant facets count keyword, integer and boolean
values only, and ``n_<path>`` mixes ints and floats: a field holding numbers (one exact
``count``) is answered by the caller's scan instead, and so is a page where local mode
may have rewritten a string (it prints UUID-like strings in the canonical UUID form).
In server mode facets need payload indexes: they are created on first use, waited for
(an unawaited index may not be there yet for the facet right after), and where the
server still has none (the key may not make indexes) the caller scans.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from qdrant_client import models

from ...filters import Path
from ..introspection import ValueCount, value_sort_key
from .filters import _key

if TYPE_CHECKING:
    from .store import QdrantVectorStore

__all__ = ["distinct_values"]

_INDEX_MISSING = "Index required but not found"  # the server's answer to a facet on a key without an index
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _holds(key: str) -> models.Condition:
    return models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=key))])


async def distinct_values(store: QdrantVectorStore, ws: str, native: models.Filter | None, path: Path, limit: int, offset: int) -> list[ValueCount] | None:
    """The page of values, or None where facets cannot say (numbers, UUID-like strings): scan instead."""
    name = store._name(ws)
    numbers = models.Filter(should=[_holds(_key("n", path)), _holds(_key("N", path))])
    with_numbers = models.Filter(must=[native, numbers]) if native is not None else numbers
    await store._ensure_indexes(ws, with_numbers)
    if (await store._call("count", ws, collection_name=name, count_filter=with_numbers, exact=True)).count:
        return None
    strings, booleans = _key("s", path), _key("b", path)
    if not store._local:
        wanted = {strings: models.PayloadSchemaType.KEYWORD, booleans: models.PayloadSchemaType.BOOL}
        await store._create_indexes(name, {k: v for k, v in wanted.items() if k not in store._indexed.get(name, set())}, wait=True)
    found: list[tuple[tuple[int, Any], int]] = []
    for rank, key in ((0, booleans), (2, strings)):
        try:
            response = await store._call("facet", ws, collection_name=name, key=key, facet_filter=native, limit=offset + limit, exact=True)
        except Exception as exc:
            if _INDEX_MISSING not in str(exc):
                raise
            return None  # the server refused to make the index (a read-only key, a timeout): scan instead
        for hit in response.hits:
            if rank == 2 and store._local and isinstance(hit.value, str) and _UUID.fullmatch(hit.value):
                return None
            found.append(((rank, hit.value), int(hit.count)))
    found.sort(key=lambda item: value_sort_key(*item))
    return [ValueCount(value, count) for (_, value), count in found[offset : offset + limit]]
