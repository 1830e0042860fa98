"""Metadata introspection: what the store API returns, and the scan every backend can fall back on.

A *field* is a path through the metadata, one segment per nested dict
(``{"author": {"name": "x"}}`` has the field ``("author", "name")``), named in
calls by its filter key (``"author.name"``, ``"file\\.name"`` for the key
``file.name`` itself) or by the path as a tuple. The values of a field are the
ones a filter sees (:func:`vecbook.filters.field_values`): the elements of a
list, else the value; ``None`` is no value. A node *carries* a field when the
filter ``{key: {"exists": True}}`` matches it.

Values are told apart as filters tell them apart: ``1`` and ``1.0`` are one value,
``True`` and ``1`` two, ``"1"`` and ``1`` two. Distinct values come most frequent
first; ties in the order booleans, numbers, strings, each ascending (strings by
code point), so every backend pages them the same way.

Backends that can answer natively override the ``_metadata_fields``,
``_distinct_values`` and ``_field_range`` hooks of ``BaseVectorStore``; the
defaults scan the matching nodes with the functions here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import FilterError, ValidationError
from ..filters import Path, _lookup, _present, field_key, iso_instant, parse_filter

__all__ = [
    "MetadataField",
    "ValueCount",
    "FieldRange",
    "FieldSummary",
    "SummaryScan",
    "field_path",
    "check_paging",
    "FieldScan",
    "ValueScan",
    "RangeScan",
    "value_sort_key",
    "type_name",
]

# What a value is, as :attr:`MetadataField.types` names it.
_TYPE_NAMES = {str: "string", bool: "boolean", int: "integer", float: "float", dict: "object", list: "list"}


@dataclass(frozen=True)
class MetadataField:
    """One metadata field: its ``path`` (a tuple of keys), ``key`` (its key in a filter dict),
    the ``types`` of its values (sorted names among ``"boolean"``, ``"float"``, ``"integer"``,
    ``"list"`` (some node holds a list), ``"object"`` (a dict inside a list, or an empty dict),
    ``"string"``) and how many nodes carry it (``count``)."""

    path: Path
    types: tuple[str, ...]
    count: int

    @property
    def key(self) -> str:
        return field_key(self.path)


class ValueCount(NamedTuple):
    """A distinct value of a field and how many nodes hold it (a node holding it twice in a list counts once)."""

    value: Any
    count: int


@dataclass(frozen=True)
class FieldSummary:
    """A field (:class:`MetadataField`), its ``values`` with counts (as :meth:`distinct_values`
    orders them; ``None`` when it holds more distinct values than asked for) and its ``range``."""

    field: MetadataField
    values: list[ValueCount] | None
    range: FieldRange


@dataclass(frozen=True)
class FieldRange:
    """The smallest and largest value of a field, and how many nodes hold such values.

    ``kind`` is ``"number"`` (ints and floats; booleans are not numbers), ``"date"``
    (strings that are all ISO 8601 dates, ordered as instants, as date range filters
    order them), ``"string"`` (ordered by code point), ``"mixed"`` (numbers and
    strings: no order between them, ``min``/``max`` are ``None``) or ``None`` (no
    orderable value). ``min``/``max`` are values as stored (an int stays an int).
    """

    min: Any
    max: Any
    kind: str | None
    count: int


def field_path(field: str | Sequence[str]) -> Path:
    """The path a field argument names: a filter key (``"a.b"``, ``"file\\.name"``) or a tuple/list of keys."""
    if isinstance(field, str):
        try:
            return parse_filter({field: {"exists": True}}).path
        except FilterError as exc:
            raise ValidationError(f"field: {exc}") from None
    if isinstance(field, (tuple, list)) and field and all(isinstance(part, str) and part for part in field):
        return tuple(field)
    raise ValidationError(f"field must be a filter key like 'a.b' or a tuple of keys, got {field!r}")


def check_paging(limit: Any, offset: Any) -> tuple[int | None, int]:
    """``limit`` (a non-negative int or None: all) and ``offset`` (a non-negative int), checked."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValidationError(f"limit must be a non-negative integer or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be a non-negative integer, got {offset!r}")
    return limit, offset


def type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value)) or next((n for t, n in _TYPE_NAMES.items() if isinstance(value, t)), "other")


def _identity(value: Any) -> tuple[int, Any] | None:
    """How filters tell values apart: (rank, value) with booleans 0, numbers 1, strings 2; None for no scalar."""
    if isinstance(value, bool):
        return 0, value
    if isinstance(value, (int, float)):
        return 1, value  # 1 == 1.0 and hash alike: one value
    if isinstance(value, str):
        return 2, str(value)
    return None


def value_sort_key(identity: tuple[int, Any], count: int) -> tuple:
    """Most frequent first; ties by type (booleans, numbers, strings), then by value."""
    return (-count, identity[0], identity[1])


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class FieldScan:
    """Fields, their types and counts, from metadata dicts seen one by one."""

    def __init__(self) -> None:
        self.fields: dict[Path, tuple[set[str], list[int]]] = {}

    def add(self, metadata: Mapping[str, Any], prefix: Path = (), times: int = 1) -> None:
        """Count ``metadata``'s fields ``times`` times (``times`` dicts of the same shape seen at once)."""
        for key, value in metadata.items():
            path = (*prefix, str(key))
            if type(value) is dict and value:
                self.add(value, path, times)
                continue
            if not _present(value):
                continue
            entry = self.fields.get(path)
            if entry is None:
                entry = self.fields[path] = (set(), [0])
            types = entry[0]
            if isinstance(value, (list, tuple)):
                types.add("list")
                types.update(type_name(v) for v in value if v is not None)
            else:
                types.add(type_name(value))
            entry[1][0] += times
            self.leaf(path, value)

    def leaf(self, path: Path, value: Any) -> None:
        """Called with every present leaf value (for subclasses)."""

    def result(self) -> list[MetadataField]:
        return [MetadataField(path, tuple(sorted(types)), n[0]) for path, (types, n) in sorted(self.fields.items())]


class ValueScan:
    """Distinct values of one field with the number of nodes holding each."""

    def __init__(self, path: Path, cap: int | None = None) -> None:
        self.path, self.cap, self.overflow = path, cap, False  # more than ``cap`` distinct values: stop counting
        self.counts: dict[tuple[int, Any], int] = {}
        self.first: dict[tuple[int, Any], Any] = {}  # the value as first seen (1 or 1.0)

    def add(self, metadata: Mapping[str, Any]) -> None:
        self.add_value(_lookup(metadata, self.path))

    def add_value(self, value: Any) -> None:
        if value is None or self.overflow:
            return
        seen = set()
        for item in _values(value):
            ident = _identity(item)
            if ident is None or ident in seen:
                continue
            seen.add(ident)
            if ident not in self.counts:
                self.counts[ident], self.first[ident] = 0, item
            self.counts[ident] += 1
        if self.cap is not None and len(self.counts) > self.cap:
            self.overflow, self.counts, self.first = True, {}, {}

    def result(self, limit: int | None, offset: int) -> list[ValueCount]:
        order = sorted(self.counts, key=lambda ident: value_sort_key(ident, self.counts[ident]))
        page = order[offset:] if limit is None else order[offset : offset + limit]
        return [ValueCount(self.first[ident], self.counts[ident]) for ident in page]


class RangeScan:
    """Min and max of one field's numbers or strings (see :class:`FieldRange`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.numbers: list[Any] = []  # [min, max, nodes]
        self.strings: list[Any] = []
        self.dates: list[Any] = []  # [(instant, text) min, max], while every string is a date
        self.all_dates = True
        self.nodes = 0  # holding a number or a string

    def add(self, metadata: Mapping[str, Any]) -> None:
        self.add_value(_lookup(metadata, self.path))

    def add_value(self, value: Any) -> None:
        if value is None:
            return
        has_number = has_string = False
        for item in _values(value):
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                continue
            if isinstance(item, str):
                has_string = True
                _widen(self.strings, item, item)
                if self.all_dates:
                    instant = iso_instant(item)
                    if instant is None:
                        self.all_dates = False
                    else:
                        _widen(self.dates, (instant, item), (instant, item))
            else:
                has_number = True
                _widen(self.numbers, item, item)
        if has_number:
            self.numbers[2] += 1
        if has_string:
            self.strings[2] += 1
        self.nodes += has_number or has_string

    def result(self) -> FieldRange:
        return range_result(self.numbers, self.strings, self.dates if self.all_dates else None, self.nodes)


def _widen(bounds: list[Any], low: Any, high: Any) -> None:
    if not bounds:
        bounds.extend([low, high, 0])
        return
    if low < bounds[0]:
        bounds[0] = low
    if high > bounds[1]:
        bounds[1] = high


def range_result(numbers: list[Any], strings: list[Any], dates: list[Any] | None, nodes: int) -> FieldRange:
    """The FieldRange of ``[min, max, nodes]`` over numbers and strings (``dates``: ``[(instant, text)...]``
    bounds when every string is an ISO date, else None); ``nodes`` hold either."""
    if numbers and strings:
        return FieldRange(None, None, "mixed", nodes)
    if numbers:
        return FieldRange(numbers[0], numbers[1], "number", numbers[2])
    if strings and dates:
        return FieldRange(dates[0][1], dates[1][1], "date", strings[2])
    if strings:
        return FieldRange(strings[0], strings[1], "string", strings[2])
    return FieldRange(None, None, None, 0)


def scan(metadatas: Iterable[Mapping[str, Any]], tally: FieldScan | ValueScan | RangeScan) -> None:
    for metadata in metadatas:
        if metadata:
            tally.add(metadata)


class SummaryScan(FieldScan):
    """Everything :class:`FieldSummary` says, for every field, in one pass over the metadata."""

    def __init__(self, max_values: int) -> None:
        super().__init__()
        self.max_values = max_values
        self.values: dict[Path, ValueScan] = {}
        self.ranges: dict[Path, RangeScan] = {}

    def leaf(self, path: Path, value: Any) -> None:
        if path not in self.values:
            self.values[path], self.ranges[path] = ValueScan(path, self.max_values), RangeScan(path)
        self.values[path].add_value(value)
        self.ranges[path].add_value(value)

    def summary(self) -> list[FieldSummary]:
        out = []
        for field in self.result():
            values = self.values[field.path]
            out.append(FieldSummary(field, None if values.overflow else values.result(None, 0), self.ranges[field.path].result()))
        return out
