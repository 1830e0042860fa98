"""``read_columns``' arguments (which columns, which slice) and its default: the columns of iterated pages."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

from ..columns import COLUMNS, NodeColumns
from ..errors import ValidationError
from ..node import VectorNode

__all__ = ["COLUMNS", "check_columns", "check_slice", "columns_of_pages", "sliced"]


def check_columns(columns: Iterable[str] | None) -> frozenset[str]:
    """The set of columns to read: all four for ``None``, else a non-empty list of their names."""
    if columns is None:
        return COLUMNS
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Iterable):
        raise ValidationError(f"columns must be a list of column names from {sorted(COLUMNS)}, got {columns!r}")
    picked = list(columns)
    unknown = [c for c in picked if not isinstance(c, str) or c not in COLUMNS]
    if unknown:
        raise ValidationError(f"unknown column(s) {unknown!r}: read_columns reads {sorted(COLUMNS)}")
    if not picked:
        raise ValidationError(f"columns must name at least one of {sorted(COLUMNS)} (None reads them all)")
    return frozenset(picked)


def check_slice(limit: int | None, offset: int) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValidationError(f"limit must be a non-negative integer or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be a non-negative integer, got {offset!r}")


async def columns_of_pages(pages: AsyncIterator[list[VectorNode]], ws: str, limit: int | None, offset: int,
                           columns: frozenset[str], dimensions: int | None) -> NodeColumns:
    """Rows ``offset`` to ``offset + limit`` of the matching pages, as the requested columns."""
    nodes: list[VectorNode] = []
    skip = offset
    async with contextlib.aclosing(pages) as pages:
        async for page in pages:
            if limit is not None and len(nodes) >= limit:
                break
            if skip >= len(page):
                skip -= len(page)
                continue
            page, skip = page[skip:], 0
            nodes.extend(page if limit is None else page[: limit - len(nodes)])
    return NodeColumns.from_nodes(ws, nodes, dimensions, columns)


def sliced(columns: NodeColumns, offset: int, limit: int | None) -> NodeColumns:
    """Rows ``offset`` to ``offset + limit`` of ``columns``."""
    if offset == 0 and (limit is None or limit >= len(columns)):
        return columns
    stop = None if limit is None else offset + limit

    def cut(values):
        return None if values is None else values[offset:stop]

    return NodeColumns(columns.workspace_id, cut(columns.ids), cut(columns.contents), cut(columns.metadatas), cut(columns.vectors))
