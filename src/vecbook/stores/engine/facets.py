"""Metadata introspection on a NodeTable, vectorised over the table's filter columns.

Distinct values and ranges read the numpy :class:`~vecbook.filter_eval.Column` the
table keeps per field (built once, caught up with writes), so a call costs numpy
work over the field's values plus Python work for the page it returns. The list
of fields walks the metadata dicts (a Python pass: there is no column of "every
field"). Same answers as the scans of ``stores/introspection.py``, which the other
backends use. Callers hold the table's lock.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from ...filters import FilterNode, Path, _lookup
from ..introspection import (
    FieldRange,
    FieldScan,
    FieldSummary,
    MetadataField,
    ValueCount,
    range_result,
)
from .row_lists import is_prefix

if TYPE_CHECKING:
    from .table import NodeTable

__all__ = ["count_rows", "table_fields", "table_values", "table_range", "table_summary"]

_STR, _NUM, _BOOL = 0, 1, 2  # Column.kind codes (vecbook.filter_eval)


def count_rows(table: NodeTable, filter: FilterNode | None) -> int:
    return len(table) if filter is None else len(table.filter_rows(filter))


def table_fields(table: NodeTable, filter: FilterNode | None) -> list[MetadataField]:
    rows = table.filter_rows(filter)
    metadatas = table.metadatas
    picked = [m for m in (metadatas[: len(rows)] if is_prefix(rows) else map(metadatas.__getitem__, rows.tolist())) if m]
    scan = FieldScan()
    if {dict}.issuperset(map(type, picked)):
        _count_fields(scan, picked, ())
    else:
        for metadata in picked:
            scan.add(metadata)
    return scan.result()


def _count_fields(scan: FieldScan, dicts: list[dict], prefix: tuple) -> None:
    """Count the fields of ``dicts`` (non-empty plain dicts) into ``scan``, as ``scan.add`` of each would.

    (key, value type) pairs are counted in C: a scalar's field, type and presence follow
    from them; nested dicts are counted the same way, a level down; lists by the types of
    their elements (one list per distinct type sequence walked); other values one by one.
    """
    keys = chain.from_iterable(dicts)
    types = map(type, chain.from_iterable(map(dict.values, dicts)))
    nested, lists, others = set(), set(), set()
    for (key, kind), times in Counter(zip(keys, types)).items():
        if kind in _SCALAR_TYPES:
            scan.add({key: kind()}, prefix, times)  # "" / 0 / 0.0 / False: a present value of that type
        elif kind is dict:
            nested.add(key)
        elif kind is list or kind is tuple:
            lists.add(key)
        elif kind is not _NONE:
            others.add(key)
    for key in sorted(nested):
        inner = [v for v in map(dict.get, dicts, repeat(key)) if type(v) is dict and v]
        if inner:
            _count_fields(scan, inner, (*prefix, str(key)))
    for key in sorted(lists):
        values = [v for v in map(dict.get, dicts, repeat(key)) if type(v) is list or type(v) is tuple]
        shapes = list(map(tuple, map(map, repeat(type), values)))
        example = dict(zip(shapes, values))
        for shape, times in Counter(shapes).items():
            scan.add({key: example[shape]}, prefix, times)
    for key in sorted(others):
        for value in map(dict.get, dicts, repeat(key)):
            if type(value) not in _SCALAR_TYPES and type(value) is not dict and type(value) is not list and type(value) is not tuple and value is not None:
                scan.add({key: value}, prefix)


_SCALAR_TYPES = frozenset({str, int, float, bool})
_NONE = type(None)


def _selected(table: NodeTable, filter: FilterNode | None, path: Path):
    """The field's Column and a mask of its elements in live rows matching ``filter``."""
    column = table._column(path)
    if filter is None:
        return column, table._alive[: table.n_rows][column.rows]
    chosen = np.zeros(table.n_rows, dtype=bool)
    chosen[table.filter_rows(filter)] = True
    return column, chosen[column.rows]


def table_values(table: NodeTable, filter: FilterNode | None, path: Path, limit: int | None, offset: int) -> list[ValueCount]:
    column, chosen = _selected(table, filter, path)
    big = np.zeros(len(column.rows), dtype=bool)
    big[column.big_at] = True
    groups = []  # (type rank, order key, count, one element) arrays per kind
    for kind, rank in ((_BOOL, 0), (_NUM, 1), (_STR, 2)):
        elements = np.flatnonzero(chosen & (column.kind == kind) & ~big)
        if not len(elements):
            continue
        if kind == _STR:
            ids, n_ids = column.code[elements], len(column.strings.items)
        else:  # numbers (and booleans as 0/1) numbered by value; -0.0 is 0.0
            keys, first_at, ids = np.unique(column.num[elements] + 0.0, return_index=True, return_inverse=True)
            n_ids = len(keys)
        counts = np.bincount(ids[_once_per_row(column.rows[elements], ids, n_ids)], minlength=n_ids)
        present = np.flatnonzero(counts)
        if kind == _STR:  # ordered by code point; read from the vocabulary (-1 - code marks a string)
            order, element = column.strings.ranked()[1][present].astype(np.float64), -1 - present
        else:
            order, element = keys[present], elements[first_at[present]]
        groups.append((np.full(len(present), rank), order, counts[present], element))
    extra = _big_values(column, chosen & big)
    if extra:
        ranks, orders, counts, elements = zip(*extra)
        groups.append((np.array(ranks), np.array(orders, dtype=np.float64), np.array(counts), np.array(elements)))
    if not groups:
        return []
    rank, order, counts, element = (np.concatenate(parts) for parts in zip(*groups))
    sorted_at = np.lexsort((order, rank, -counts))
    page = sorted_at[offset:] if limit is None else sorted_at[offset : offset + limit]
    return [ValueCount(_value(table, column, int(element[i])), int(counts[i])) for i in page.tolist()]


def _once_per_row(rows: np.ndarray, ids: np.ndarray, n_ids: int) -> np.ndarray:
    """A mask keeping one element per (row, value): a value repeated in one row's list counts once."""
    if len(rows) < 2 or np.bincount(rows).max() < 2:
        return np.ones(len(rows), dtype=bool)  # one value per row: nothing repeats
    pairs = rows.astype(np.int64) * max(n_ids, 1) + ids
    _, first = np.unique(pairs, return_index=True)
    keep = np.zeros(len(rows), dtype=bool)
    keep[first] = True
    return keep


def _value(table: NodeTable, column: Any, element: int) -> Any:
    """The value behind a group's element (a negative number ``-1 - code``: a string of the vocabulary)."""
    return column.strings.items[-1 - element] if element < 0 else _original(table, column, element)


def _distinct_rows(rows: np.ndarray, n_rows: int) -> int:
    seen = np.zeros(n_rows, dtype=bool)
    seen[rows] = True
    return int(seen.sum())


def _big_values(column: Any, mask: np.ndarray) -> list[tuple[int, float, int, int]]:
    """(rank, order key, count, element) of the ints beyond float64's exact range, counted exactly."""
    if not mask.any():
        return []
    exact = dict(zip(column.big_at.tolist(), column.big.tolist()))
    seen: dict[int, tuple[set[int], int]] = {}
    for element in np.flatnonzero(mask).tolist():
        value = exact[element]
        rows, _ = seen.setdefault(value, (set(), element))
        rows.add(int(column.rows[element]))
    return [(1, float(value), len(rows), element) for value, (rows, element) in seen.items()]


def _original(table: NodeTable, column: Any, element: int) -> Any:
    """The stored value behind one element of a column (an int stays an int)."""
    kind = column.kind[element]
    if kind == _STR:
        return column.strings.items[column.code[element]]
    value = _lookup(table.metadatas[column.rows[element]], column.path)
    items = value if isinstance(value, (list, tuple)) else [value]
    if kind == _BOOL:
        return bool(column.num[element])
    exact = dict(zip(column.big_at.tolist(), column.big.tolist())).get(element, column.num[element])
    for item in items:
        if not isinstance(item, bool) and isinstance(item, (int, float)) and item == exact:
            return item
    return exact


def table_range(table: NodeTable, filter: FilterNode | None, path: Path) -> FieldRange:
    column, chosen = _selected(table, filter, path)
    numbers = chosen & (column.kind == _NUM)
    strings = chosen & (column.kind == _STR)
    number_bounds = _number_bounds(table, column, numbers)
    string_bounds, date_bounds = _string_bounds(column, strings)
    nodes = _distinct_rows(column.rows[numbers | strings], column.n_rows)
    return range_result(number_bounds, string_bounds, date_bounds, nodes)


def _number_bounds(table: NodeTable, column: Any, mask: np.ndarray) -> list[Any]:
    if not mask.any():
        return []
    elements = np.flatnonzero(mask)
    nums = column.num[elements]
    bounds = []
    for pick in (np.min, np.max):
        tied = elements[nums == pick(nums)]
        values = [_original(table, column, int(e)) for e in tied[:64].tolist()]
        if len(tied) > 64 and len(column.big_at):  # ties are big ints only in practice
            values += [_original(table, column, int(e)) for e in np.intersect1d(tied, column.big_at).tolist()]
        bounds.append(min(values) if pick is np.min else max(values))
    return [*bounds, _distinct_rows(column.rows[elements], column.n_rows)]


def _string_bounds(column: Any, mask: np.ndarray) -> tuple[list[Any], list[Any] | None]:
    if not mask.any():
        return [], None
    texts = column.strings.items
    present = np.zeros(len(texts), dtype=bool)
    present[column.code[mask]] = True
    codes = np.flatnonzero(present)
    nodes = _distinct_rows(column.rows[mask], column.n_rows)
    _, rank = column.strings.ranked()
    ranks = rank[codes]
    bounds = [texts[codes[np.argmin(ranks)]], texts[codes[np.argmax(ranks)]], nodes]
    instants, is_date = column.strings.instants()
    if not is_date[codes].all():
        return bounds, None
    times = instants[codes]
    low = min((int(t), texts[c]) for c, t in zip(codes[times == times.min()].tolist(), times[times == times.min()].tolist()))
    high = max((int(t), texts[c]) for c, t in zip(codes[times == times.max()].tolist(), times[times == times.max()].tolist()))
    return bounds, [low, high]


def table_summary(table: NodeTable, filter: FilterNode | None, max_values: int) -> list[FieldSummary]:
    out = []
    for field in table_fields(table, filter):
        values = table_values(table, filter, field.path, max_values + 1, 0)
        out.append(FieldSummary(field, values if len(values) <= max_values else None, table_range(table, filter, field.path)))
    return out
