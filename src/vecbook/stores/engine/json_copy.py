"""Deep copies of JSON-like metadata, for callers that may change what they are handed."""

from __future__ import annotations

from itertools import chain
from typing import Any

__all__ = ["copy_json", "copy_jsons"]


def copy_jsons(metadatas: list[Any]) -> list[Any]:
    """Deep copies of many metadata dicts: shallow copies in C when no value is a container."""
    if {dict}.issuperset(map(type, metadatas)):
        copies = list(map(dict.copy, metadatas))
        if _CONTAINERS_SET.isdisjoint(map(type, chain.from_iterable(map(dict.values, copies)))):
            return copies
    return [copy_json(m) for m in metadatas]


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars); scalars are shared, not copied."""
    if type(value) is dict:
        return {k: v if type(v) not in _CONTAINERS else copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [v if type(v) not in _CONTAINERS else copy_json(v) for v in value]
    return value


_CONTAINERS = (dict, list)
_CONTAINERS_SET = frozenset(_CONTAINERS)
