"""Metadata introspection and update by id or filter: public methods of BaseVectorStore (a mixin of it).

The logic lives in ``introspection.py``, ``by_filter.py`` and ``engine/facets.py``. Hooks a
backend may override (coroutines; ``filter`` is the parsed tree, to translate; the defaults
scan the matching nodes through ``_matching_pages``):

``_count_where(ws, native) -> int | None``   a native count of an exact filter (None: not natively)
``_matching_ids(ws, filter) -> list[str]``   ids of the matching nodes (for delete/update by filter)
``_metadata_fields(ws, filter)``, ``_describe_metadata(ws, filter, max_values)``,
``_distinct_values(ws, filter, path, limit, offset)``, ``_field_range(ws, filter, path)``
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from .._aio import sync_twin
from ..errors import ValidationError
from ..filters import FilterNode, parse_filter
from . import by_filter
from .arguments import public
from .introspection import (
    FieldRange,
    FieldScan,
    FieldSummary,
    MetadataField,
    RangeScan,
    SummaryScan,
    ValueCount,
    ValueScan,
    check_paging,
    field_path,
    scan,
)

__all__ = ["MetadataMethods"]


class MetadataMethods:
    """``metadata_fields``, ``distinct_values``, ``field_range``, ``describe_metadata``, ``update_metadata``."""


    @public
    async def async_metadata_fields(self, workspace_id: str, filter_dict: dict | None = None) -> list[MetadataField]:
        """Every metadata field of the (matching) nodes, sorted by path: a :class:`MetadataField` each,
        with the field's ``path``, its filter ``key``, the ``types`` of its values and ``count``, how
        many nodes carry it (what ``{key: {"exists": True}}`` matches). Nested dicts give longer paths."""
        tree = parse_filter(filter_dict)
        return await self._metadata_fields(await self._require(workspace_id), tree)

    @public
    async def async_distinct_values(
        self, workspace_id: str, field: str | Sequence[str], filter_dict: dict | None = None, limit: int | None = 100, offset: int = 0
    ) -> list[ValueCount]:
        """The distinct values of ``field`` (a filter key such as ``"author.name"``, or a tuple of keys)
        with how many (matching) nodes hold each, as ``(value, count)`` pairs: most frequent first,
        ties ordered booleans, numbers, strings, each ascending. ``limit`` (None: all) and ``offset`` page them.
        Values compare as filters compare them (``1 == 1.0``, ``True != 1``); list elements count one by one."""
        path, (limit, offset), tree = field_path(field), check_paging(limit, offset), parse_filter(filter_dict)
        ws = await self._require(workspace_id)
        if limit == 0:
            return []
        return await self._distinct_values(ws, tree, path, limit, offset)

    @public
    async def async_field_range(self, workspace_id: str, field: str | Sequence[str], filter_dict: dict | None = None) -> FieldRange:
        """The smallest and largest value of ``field`` over the (matching) nodes, as a :class:`FieldRange`
        (``min``, ``max``, ``kind``: ``"number"``, ``"date"``, ``"string"``, ``"mixed"`` or None; ``count``)."""
        path, tree = field_path(field), parse_filter(filter_dict)
        return await self._field_range(await self._require(workspace_id), tree, path)

    @public
    async def async_describe_metadata(self, workspace_id: str, filter_dict: dict | None = None, max_values: int = 30) -> list[FieldSummary]:
        """:meth:`metadata_fields`, :meth:`distinct_values` and :meth:`field_range` of every field at once:
        a :class:`FieldSummary` per field (``field``, ``values``: all of them with counts, or None if
        there are more than ``max_values``, and ``range``), in one pass where the backend scans."""
        limit, _ = check_paging(max_values, 0)
        if limit is None:
            raise ValidationError("max_values must be a non-negative integer")
        return await self._describe_metadata(await self._require(workspace_id), parse_filter(filter_dict), limit)

    @public
    async def async_update_metadata(
        self, workspace_id: str, patch: dict, node_ids: str | Sequence[str] | None = None, filter_dict: dict | None = None
    ) -> int:
        """Merge ``patch`` into the metadata of the nodes with ``node_ids``, or of those matching
        ``filter_dict`` (one of them); returns how many nodes changed.

        One level deep: each key of ``patch`` replaces that key (a nested dict is replaced
        whole) and a key set to ``None`` is removed, like a JSON Merge Patch that does not
        recurse. ``patch`` is checked like inserted metadata. Vectors are kept, never
        re-embedded; searches and filters see the new values at once. All or nothing.
        """
        ids, tree = by_filter.selection(node_ids, filter_dict, "update_metadata")
        clean = by_filter.check_patch(patch)
        ws = await self._require(workspace_id)
        return await by_filter.update_metadata(self, ws, clean, ids, tree)

    async def _count_where(self, ws: str, native: Any) -> int | None:
        return None

    async def _matching_ids(self, ws: str, filter: FilterNode | None) -> list[str]:
        return await by_filter.matching_ids(self, ws, filter)

    async def _metadata_fields(self, ws: str, filter: FilterNode | None) -> list[MetadataField]:
        return (await self._scan(ws, filter, FieldScan())).result()

    async def _distinct_values(self, ws: str, filter: FilterNode | None, path: tuple, limit: int | None, offset: int) -> list[ValueCount]:
        return (await self._scan(ws, filter, ValueScan(path))).result(limit, offset)

    async def _field_range(self, ws: str, filter: FilterNode | None, path: tuple) -> FieldRange:
        return (await self._scan(ws, filter, RangeScan(path))).result()

    async def _describe_metadata(self, ws: str, filter: FilterNode | None, max_values: int) -> list[FieldSummary]:
        """One scan; a backend whose other introspection hooks are native composes them instead."""
        return (await self._scan(ws, filter, SummaryScan(max_values))).summary()

    async def _scan(self, ws: str, filter: FilterNode | None, tally: Any) -> Any:
        async with contextlib.aclosing(self._matching_pages(ws, self.batch_size, filter, frozenset({"metadatas"}))) as pages:
            async for page in pages:
                scan((node.metadata for node in page), tally)
        return tally

    metadata_fields = sync_twin(async_metadata_fields)
    distinct_values = sync_twin(async_distinct_values)
    field_range = sync_twin(async_field_range)
    describe_metadata = sync_twin(async_describe_metadata)
    update_metadata = sync_twin(async_update_metadata)
