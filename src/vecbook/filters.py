"""The portable filter language: parse once into a small tree, evaluate on numpy columns.

Keys name metadata fields; a dotted key (``"a.b"``) reaches into nested dicts.

=====================================  ==============================================
form                                   matches a node when
=====================================  ==============================================
``{"f": v}`` / ``{"f": {"eq": v}}``    some value of ``f`` equals ``v``
``{"f": [a, b]}`` / ``{"in": [a, b]}``  some value of ``f`` is one of them
``{"f": {"ne": v}}``                   no value of ``f`` equals ``v`` (missing ``f`` matches)
``{"f": {"nin": [a, b]}}``             no value of ``f`` is one of them (missing matches)
``{"f": {"gte": x, "lt": y}}``         some value of ``f`` satisfies every bound given
``{"f": {"exists": True}}``            ``f`` is present: not null, not ``[]`` / ``{}`` / a list of nulls
``{"f": {"exists": False}}``           ``f`` is missing or not present as above
``{"$and": [...]}``, ``{"$or": [...]}``  all / any of the sub-filters match
``{"$not": {...}}``                    the sub-filter does not match
several keys in one dict               all of them match (AND)
=====================================  ==============================================

The *values* of a field: none if it is missing or null; the elements of a list
(list-valued metadata matches when any element matches); otherwise the value
itself. Strings match exactly (case-sensitive). ``1 == 1.0``, but booleans are
never numbers and strings are never numbers. Range bounds are all numbers or
all strings; strings compare by code point, so ISO dates of one precision
compare in time order. ``ne``, ``nin``, ``$not`` and ``exists: False`` are the
exact complements of ``eq``, ``in``, the sub-filter and ``exists: True``.
Operators may also be written with a ``$`` prefix (``$gte``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .errors import FilterError

__all__ = [
    "And",
    "Or",
    "Not",
    "Compare",
    "Range",
    "Exists",
    "FilterNode",
    "parse_filter",
    "field_values",
    "field_present",
    "Column",
    "evaluate",
    "filter_mask",
    "filter_paths",
    "filter_leaves",
    "field_key",
]

Scalar = Union[str, int, float, bool]
Path = tuple[str, ...]

RANGE_OPS = ("gt", "gte", "lt", "lte")
FIELD_OPS = ("eq", "ne", "in", "nin", "exists") + RANGE_OPS


@dataclass(frozen=True)
class And:
    children: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Not:
    child: FilterNode


@dataclass(frozen=True)
class Compare:
    """``op`` is one of eq, ne, in, nin; ``value`` a scalar (eq/ne) or a tuple of scalars (in/nin)."""

    path: Path
    op: str
    value: Any

    @property
    def field(self) -> str:
        return field_key(self.path)


@dataclass(frozen=True)
class Range:
    """Bounds are all numbers or all strings; ``None`` means unbounded."""

    path: Path
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None

    @property
    def field(self) -> str:
        return field_key(self.path)

    def bounds(self) -> dict[str, Any]:
        return {op: getattr(self, op) for op in RANGE_OPS if getattr(self, op) is not None}

    @property
    def is_numeric(self) -> bool:
        return not isinstance(next(iter(self.bounds().values())), str)


@dataclass(frozen=True)
class Exists:
    path: Path
    value: bool = True

    @property
    def field(self) -> str:
        return field_key(self.path)


FilterNode = Union[And, Or, Not, Compare, Range, Exists]


# ---- parsing -----------------------------------------------------------------------


def parse_filter(filter_dict: Mapping[str, Any] | None) -> FilterNode | None:
    """Parse a portable filter dict; ``None`` or ``{}`` means "no filter"."""
    if filter_dict is None:
        return None
    if not isinstance(filter_dict, Mapping):
        raise FilterError(f"a filter must be a dict, got {type(filter_dict).__name__}")
    if not filter_dict:
        return None
    return _parse_dict(filter_dict, where="filter")


def _parse_dict(spec: Mapping[str, Any], where: str) -> FilterNode:
    if not isinstance(spec, Mapping):
        raise FilterError(f"{where}: expected a dict, got {type(spec).__name__}")
    if not spec:
        raise FilterError(f"{where}: an empty dict is not a filter")
    parts: list[FilterNode] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise FilterError(f"{where}: keys must be strings, got {key!r}")
        if key.startswith("$"):
            parts.append(_parse_logical(key, value, where))
        else:
            parts.append(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_logical(key: str, value: Any, where: str) -> FilterNode:
    if key == "$not":
        return Not(_parse_dict(value, where="$not"))
    if key in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(f"{key} takes a non-empty list of filters, got {value!r}")
        children = tuple(_parse_dict(v, where=f"{key}[{i}]") for i, v in enumerate(value))
        if len(children) == 1:
            return children[0]
        return And(children) if key == "$and" else Or(children)
    raise FilterError(f"{where}: unknown logical operator {key!r} (valid: $and, $or, $not)")


def field_key(path: Sequence[str]) -> str:
    """The filter key of a metadata path: segments joined by ``.``, with ``\\`` and ``.`` inside a
    segment escaped by a backslash (``field_key(["file.name"]) == "file\\.name"``)."""
    return ".".join(part.replace("\\", "\\\\").replace(".", "\\.") for part in path)


def _parse_path(key: str) -> Path:
    """Split a filter key into its path: ``.`` separates segments, ``\\.`` is a literal dot, ``\\\\`` a backslash."""
    if "\\" not in key:
        path = tuple(key.split("."))
    else:
        parts, current, chars = [], [], iter(key)
        for char in chars:
            if char == "\\":
                escaped = next(chars, None)
                if escaped not in (".", "\\"):
                    raise FilterError(f"invalid field name {key!r}: a backslash escapes only '.' or '\\\\'")
                current.append(escaped)
            elif char == ".":
                parts.append("".join(current))
                current = []
            else:
                current.append(char)
        parts.append("".join(current))
        path = tuple(parts)
    if not key or any(not part for part in path):
        raise FilterError(f"invalid field name {key!r}: empty path segment")
    return path


def _parse_field(key: str, value: Any) -> FilterNode:
    path = _parse_path(key)
    if isinstance(value, Mapping):
        return _parse_operators(key, path, value)
    if isinstance(value, (list, tuple)):
        return Compare(path, "in", _scalars(key, "in", value))
    return Compare(path, "eq", _scalar(key, "eq", value))


def _parse_operators(key: str, path: Path, ops: Mapping[str, Any]) -> FilterNode:
    if not ops:
        raise FilterError(f"field {key!r}: an empty dict is not a condition")
    parts: list[FilterNode] = []
    bounds: dict[str, Any] = {}
    for raw_op, operand in ops.items():
        op = raw_op[1:] if isinstance(raw_op, str) and raw_op.startswith("$") else raw_op
        if op not in FIELD_OPS:
            raise FilterError(
                f"field {key!r}: unknown operator {raw_op!r} (valid: {', '.join(FIELD_OPS)}); "
                f"to reach a nested field use a dotted key such as '{key}.{raw_op}'"
            )
        if op in RANGE_OPS:
            bounds[op] = _bound(key, op, operand)
        elif op == "exists":
            if not isinstance(operand, bool):
                raise FilterError(f"field {key!r}: exists takes true or false, got {operand!r}")
            parts.append(Exists(path, operand))
        elif op in ("in", "nin"):
            if not isinstance(operand, (list, tuple)):
                raise FilterError(f"field {key!r}: {op} takes a list, got {type(operand).__name__}")
            parts.append(Compare(path, op, _scalars(key, op, operand)))
        else:
            parts.append(Compare(path, op, _scalar(key, op, operand)))
    if bounds:
        kinds = {isinstance(b, str) for b in bounds.values()}
        if len(kinds) > 1:
            raise FilterError(f"field {key!r}: range mixes string and number bounds: {bounds!r}")
        parts.insert(0, Range(path, **bounds))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _scalar(key: str, op: str, value: Any) -> Scalar:
    if value is None:
        raise FilterError(
            f"field {key!r}: cannot compare with null; use {{'{key}': {{'exists': False}}}} for missing values"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"field {key!r}: {op} value must be finite, got {value!r}")
    if not isinstance(value, (str, int, float, bool)):
        raise FilterError(
            f"field {key!r}: {op} takes a string, number or boolean, got {type(value).__name__} {value!r}"
        )
    return value


def _scalars(key: str, op: str, values: Iterable[Any]) -> tuple[Scalar, ...]:
    return tuple(_scalar(key, op, v) for v in values)


def _bound(key: str, op: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FilterError(f"field {key!r}: {op} takes a number or a string (e.g. an ISO date), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"field {key!r}: {op} bound must be finite, got {value!r}")
    return value


def filter_leaves(node: FilterNode | None) -> Iterator[Compare | Range | Exists]:
    """The field conditions of a filter, below its ``$and``/``$or``/``$not``."""
    if node is None:
        return
    if isinstance(node, (And, Or)):
        for child in node.children:
            yield from filter_leaves(child)
    elif isinstance(node, Not):
        yield from filter_leaves(node.child)
    else:
        yield node


def filter_paths(node: FilterNode | None) -> set[Path]:
    """Every field path a filter reads."""
    return {leaf.path for leaf in filter_leaves(node)}


# ---- values of a field -------------------------------------------------------------

_ABSENT = object()
_SCALARS = (str, int, float, bool)


def _lookup(metadata: Any, path: Path) -> Any:
    value = metadata
    for part in path:
        if type(value) is not dict:
            if not isinstance(value, Mapping):
                return _ABSENT
        value = value.get(part, _ABSENT)
        if value is _ABSENT:
            return _ABSENT
    return value


def _present(value: Any) -> bool:
    if value is None or value is _ABSENT:
        return False
    if isinstance(value, (list, tuple)):
        return any(v is not None for v in value)
    if isinstance(value, dict):
        return bool(value)
    return True


def field_present(metadata: Mapping[str, Any], path: Path) -> bool:
    """Whether ``path`` holds something: not null, not an empty list or dict, not only nulls."""
    return _present(_lookup(metadata, path))


def field_values(metadata: Mapping[str, Any], path: Path) -> list[Scalar]:
    """The values a filter sees for ``path`` in one node's metadata."""
    value = _lookup(metadata, path)
    if isinstance(value, _SCALARS):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, _SCALARS)]
    return []


_STR, _NUM, _BOOL = 0, 1, 2


class Column:
    """One field's values over many rows, exploded: one entry per (row, value)."""

    __slots__ = ("rows", "kind", "num", "code", "vocab", "n_rows", "present", "path")

    def __init__(self, metadatas: Sequence[Mapping[str, Any]], path: Path):
        self.path = path
        rows: list[int] = []
        kinds: list[int] = []
        nums: list[float] = []
        strs: list[str] = []
        present = np.zeros(len(metadatas), dtype=bool)
        for row, metadata in enumerate(metadatas):
            value = _lookup(metadata, path) if metadata else _ABSENT
            if value is _ABSENT or value is None:
                continue
            present[row] = _present(value)
            for v in (value,) if isinstance(value, _SCALARS) else value if isinstance(value, (list, tuple)) else ():
                if v.__class__ is str:
                    rows.append(row)
                    kinds.append(_STR)
                    nums.append(math.nan)
                    strs.append(v)
                elif v.__class__ is bool:
                    rows.append(row)
                    kinds.append(_BOOL)
                    nums.append(1.0 if v else 0.0)
                elif isinstance(v, (int, float)):
                    rows.append(row)
                    kinds.append(_NUM)
                    nums.append(float(v))
                elif isinstance(v, str):  # str subclasses
                    rows.append(row)
                    kinds.append(_STR)
                    nums.append(math.nan)
                    strs.append(str(v))
        self.n_rows = len(metadatas)
        self.present = present
        self.rows = np.asarray(rows, dtype=np.int64)
        self.kind = np.asarray(kinds, dtype=np.int8)
        self.num = np.asarray(nums, dtype=np.float64)
        is_str = self.kind == _STR
        strings = np.asarray(strs, dtype=str)
        # Codes are ranks in the sorted vocabulary, so a string range is a code range.
        self.vocab = np.unique(strings)
        self.code = np.full(len(rows), -1, dtype=np.int64)
        self.code[is_str] = np.searchsorted(self.vocab, strings)

    def with_rows(self, metadatas: Sequence[Mapping[str, Any]], rows: np.ndarray) -> Column:
        """This column after ``rows`` of ``metadatas`` changed (rewritten or appended): a new Column.

        Costs numpy work over the elements, not a Python pass over every row:
        the old elements of those rows are dropped and theirs re-read.
        """
        part = Column([metadatas[r] for r in rows], self.path)
        rows = np.asarray(rows, dtype=np.int64)
        keep = ~np.isin(self.rows, rows) if len(rows) and len(self.rows) else np.ones(len(self.rows), dtype=bool)
        out = object.__new__(Column)
        out.path = self.path
        out.n_rows = len(metadatas)
        out.present = np.zeros(out.n_rows, dtype=bool)
        out.present[: self.n_rows] = self.present
        out.present[rows] = part.present
        out.rows = np.concatenate([self.rows[keep], rows[part.rows]])
        out.kind = np.concatenate([self.kind[keep], part.kind])
        out.num = np.concatenate([self.num[keep], part.num])
        out.vocab = np.union1d(self.vocab, part.vocab) if len(part.vocab) else self.vocab
        codes = []
        for column, mask in ((self, keep), (part, None)):
            code = column.code if mask is None else column.code[mask]
            if len(column.vocab) and out.vocab is not column.vocab:
                remap = np.searchsorted(out.vocab, column.vocab)
                code = np.where(code >= 0, remap[np.maximum(code, 0)], -1)
            codes.append(code)
        out.code = np.concatenate(codes).astype(np.int64, copy=False)
        return out

    def _code_of(self, value: str) -> int:
        i = int(np.searchsorted(self.vocab, value))
        return i if i < len(self.vocab) and self.vocab[i] == value else -1

    def equals(self, value: Scalar) -> np.ndarray:
        if isinstance(value, bool):
            return (self.kind == _BOOL) & (self.num == float(value))
        if isinstance(value, str):
            code = self._code_of(value)
            return self.code == code if code >= 0 else np.zeros(len(self.rows), dtype=bool)
        return (self.kind == _NUM) & (self.num == float(value))

    def one_of(self, values: Sequence[Scalar]) -> np.ndarray:
        mask = np.zeros(len(self.rows), dtype=bool)
        strings = [v for v in values if isinstance(v, str)]
        if strings:
            codes = [c for c in (self._code_of(s) for s in strings) if c >= 0]
            if codes:
                mask |= np.isin(self.code, codes)
        for value in values:
            if not isinstance(value, str):
                mask |= self.equals(value)
        return mask

    def in_range(self, node: Range) -> np.ndarray:
        if node.is_numeric:
            mask = self.kind == _NUM
            values = self.num
        else:
            lo, hi = 0, len(self.vocab)
            if node.gte is not None:
                lo = max(lo, int(np.searchsorted(self.vocab, node.gte, side="left")))
            if node.gt is not None:
                lo = max(lo, int(np.searchsorted(self.vocab, node.gt, side="right")))
            if node.lte is not None:
                hi = min(hi, int(np.searchsorted(self.vocab, node.lte, side="right")))
            if node.lt is not None:
                hi = min(hi, int(np.searchsorted(self.vocab, node.lt, side="left")))
            return (self.code >= lo) & (self.code < hi)
        with np.errstate(invalid="ignore"):
            if node.gt is not None:
                mask = mask & (values > node.gt)
            if node.gte is not None:
                mask = mask & (values >= node.gte)
            if node.lt is not None:
                mask = mask & (values < node.lt)
            if node.lte is not None:
                mask = mask & (values <= node.lte)
        return mask

    def any_row(self, element_mask: np.ndarray | None = None) -> np.ndarray:
        """Rows where at least one (selected) element is present."""
        out = np.zeros(self.n_rows, dtype=bool)
        out[self.rows if element_mask is None else self.rows[element_mask]] = True
        return out


def evaluate(node: FilterNode, column: Callable[[Path], Column], n_rows: int) -> np.ndarray:
    """A boolean mask over ``n_rows`` rows; ``column(path)`` gives that field's Column."""
    if isinstance(node, And):
        mask = np.ones(n_rows, dtype=bool)
        for child in node.children:
            mask &= evaluate(child, column, n_rows)
        return mask
    if isinstance(node, Or):
        mask = np.zeros(n_rows, dtype=bool)
        for child in node.children:
            mask |= evaluate(child, column, n_rows)
        return mask
    if isinstance(node, Not):
        return ~evaluate(node.child, column, n_rows)
    col = column(node.path)
    if isinstance(node, Exists):
        return col.present.copy() if node.value else ~col.present
    if isinstance(node, Range):
        return col.any_row(col.in_range(node))
    if node.op in ("eq", "ne"):
        hit = col.any_row(col.equals(node.value))
    else:
        hit = col.any_row(col.one_of(node.value))
    return hit if node.op in ("eq", "in") else ~hit


def filter_mask(node: FilterNode | None, metadatas: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Evaluate a parsed filter over a list of metadata dicts (no caching)."""
    if node is None:
        return np.ones(len(metadatas), dtype=bool)
    cache: dict[Path, Column] = {}

    def column(path: Path) -> Column:
        if path not in cache:
            cache[path] = Column(metadatas, path)
        return cache[path]

    return evaluate(node, column, len(metadatas))
