"""Deleting and updating the nodes a filter (or a list of ids) selects: the logic behind
``BaseVectorStore.delete(..., filter_dict=...)`` and ``update_metadata``.

Both first list the ids that match (a snapshot: paging over a filter while changing
the very field it reads would skip nodes), then write through ``writes.py``, so a
call is all or nothing like an insert. An update rewrites each changed node with
its stored vector (never re-embedded), through the backend's ordinary upsert, which
rebuilds whatever the backend derives from metadata for filtering.

``update_metadata`` merges one level deep, like a JSON Merge Patch (RFC 7386) that
does not recurse: each key of ``patch`` replaces that key of the metadata (a nested
dict is replaced whole), and a key whose value is ``None`` is removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..filters import FilterNode, parse_filter
from ..node import VectorNode
from .engine.batch import check_node_id, clean_metadata
from .writes import all_or_nothing

if TYPE_CHECKING:
    from .base import BaseVectorStore

__all__ = ["selection", "matching_ids", "delete_matching", "update_metadata", "check_patch", "merged"]


def selection(node_ids: Any, filter_dict: Any, what: str) -> tuple[list[str] | None, FilterNode | None]:
    """Exactly one of ``node_ids`` and ``filter_dict``, checked: (ids, None) or (None, parsed filter)."""
    if (node_ids is None) == (filter_dict is None):
        both = "both" if node_ids is not None else "neither"
        raise TypeError(f"{what}() takes node_ids or filter_dict, not {both}")
    if node_ids is not None:
        ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        for node_id in ids:
            check_node_id(node_id)
        return list(dict.fromkeys(ids)), None
    if not isinstance(filter_dict, Mapping):
        raise ValidationError(f"filter_dict must be a dict, got {type(filter_dict).__name__}")
    return None, parse_filter(filter_dict)


async def matching_ids(store: BaseVectorStore, ws: str, filter: FilterNode | None) -> list[str]:
    """The ids of the nodes matching ``filter``, read page by page (the default ``_matching_ids``)."""
    ids: list[str] = []
    async with contextlib.aclosing(store._matching_pages(ws, store.batch_size, filter)) as pages:
        async for page in pages:
            ids.extend(node.unique_id for node in page)
    return ids


async def delete_matching(store: BaseVectorStore, ws: str, filter: FilterNode) -> int:
    """Delete the nodes matching ``filter``; how many there were."""
    ids = await store._matching_ids(ws, filter)
    async with all_or_nothing(store, ws, single=True) as writes:
        await writes.delete(ids)
    return len(ids)


def check_patch(patch: Any) -> dict[str, Any]:
    if not isinstance(patch, Mapping):
        raise ValidationError(f"patch must be a dict of metadata keys to new values, got {type(patch).__name__}")
    return clean_metadata(dict(patch), "patch")


def merged(metadata: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    """``metadata`` with ``patch`` applied, or None if that changes nothing."""
    new = dict(metadata)
    for key, value in patch.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return None if _same(new, metadata) else new


def _same(a: Any, b: Any) -> bool:
    """Equal as stored JSON: ``1``, ``1.0`` and ``True`` differ."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


async def update_metadata(store: BaseVectorStore, ws: str, patch: dict[str, Any], ids: list[str] | None, filter: FilterNode | None) -> int:
    """Apply ``patch`` to the selected nodes; how many changed."""
    if ids is None:
        ids = await store._matching_ids(ws, filter)
    changed: list[VectorNode] = []
    for start in range(0, len(ids), store.batch_size):
        for node in await store._get(ws, ids[start : start + store.batch_size]):
            metadata = merged(node.stored_metadata(), patch)
            if metadata is not None:
                changed.append(VectorNode(unique_id=node.unique_id, content=node.content, metadata=metadata, vector=node.vector))
    if changed:
        batch = await store._prepare(ws, changed, embed=False)
        async with all_or_nothing(store, ws, single=True) as writes:
            await writes.upsert(batch)
    return len(changed)

