"""The portable filter language: parse once into a small tree; the helpers every backend shares.

Keys name metadata fields; a dotted key (``"a.b"``) reaches into nested dicts, and a
backslash escapes a dot (or a backslash) inside one key: ``"file\\.name"`` is the key
``file.name`` itself, not ``name`` inside ``file`` (:func:`field_key` writes such keys).

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
itself. Strings match exactly (case-sensitive, code point by code point, NUL
included). Numbers compare exactly, as Python compares ints and floats
(``1 == 1.0``, ``2**53 + 1 != 2**53``); metadata ints and int filter values lie
in the int64 range (a bigger int is refused: use a float). Booleans are never
numbers and strings are never numbers. Range bounds are all numbers or all
strings: numbers compare as numbers; strings that are all ISO 8601 dates
(:func:`iso_instant`) make a *date range*, whose values compare as instants (a
value that is not such a date does not match); other strings compare by code
point, and a date bound beside a non-date string bound is an error. Equality
on strings stays string equality, dates or not. ``ne``, ``nin``, ``$not`` and
``exists: False`` are the exact complements of ``eq``, ``in``, the sub-filter
and ``exists: True``. Operators may also be written with a ``$`` prefix (``$gte``).

Evaluation over many nodes (numpy columns) lives in :mod:`vecbook.filter_eval`
and is re-exported here: :class:`Column`, :func:`evaluate`, :func:`filter_mask`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Union

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
    "iso_instant",
    "number_parts",
    "is_int64",
    "INT64_MIN",
    "INT64_MAX",
]

Scalar = Union[str, int, float, bool]
Path = tuple[str, ...]

RANGE_OPS = ("gt", "gte", "lt", "lte")
FIELD_OPS = ("eq", "ne", "in", "nin", "exists") + RANGE_OPS

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# ---- values: ints, dates -------------------------------------------------------------


def is_int64(value: int) -> bool:
    """Whether an int fits in int64, the range metadata ints and int filter values must lie in."""
    return INT64_MIN <= value <= INT64_MAX


def number_parts(value: int | float) -> tuple[float, int]:
    """``(h, r)``: ``h`` the float64 nearest ``value``, ``r`` the exact int rest (``value == h + r``).

    ``r`` is 0 for floats and for ints a float64 holds exactly; for other int64
    values ``|r| <= 512``. Pairs compare like the numbers (``h`` first, then ``r``),
    since rounding to the nearest float64 never reverses an order: that is how a
    backend whose numbers are float64 compares int64 values exactly.
    """
    if isinstance(value, float):
        return float(value), 0
    high = float(value)  # OverflowError beyond float range: only int64 values come here
    return high, int(value) - int(high)


# YYYY-MM, YYYY-MM-DD, YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH[[:]MM]]
_ISO = re.compile(
    r"(\d{4})-(\d\d)(?:-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|[+-]\d\d(?::?\d\d)?)?)?)?",
    re.ASCII,
)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_US_PER_DAY = 86_400_000_000


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def iso_instant(text: str) -> int | None:
    """The instant an ISO 8601 date or datetime string names, in microseconds since the epoch
    (UTC); ``None`` if ``text`` is not one of these forms:

    ``YYYY-MM`` (the 1st at midnight), ``YYYY-MM-DD`` (midnight), and
    ``YYYY-MM-DD[T or space]HH:MM[:SS[.fraction]]`` with an optional ``Z`` or
    ``±HH:MM`` / ``±HHMM`` / ``±HH`` offset. Without an offset a time is UTC. Years
    0001-9999; digits are ASCII; fraction digits beyond the microsecond are
    dropped (truncated, not rounded). Our own grammar rather than
    ``datetime.fromisoformat``, whose accepted forms change across Python versions.
    """
    if len(text) < 7 or text[4] != "-" or len(text) > 64:
        return None
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, offset = match.groups()
    year, month, day = int(year_s), int(month_s), int(day_s or 1)
    if year == 0 or not 1 <= month <= 12:
        return None
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _MONTH_DAYS[month - 1] + leap:
        return None
    micros = _days_from_civil(year, month, day) * _US_PER_DAY
    if hour_s is None:
        return micros
    hour, minute, second = int(hour_s), int(minute_s), int(second_s or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    micros += ((hour * 60 + minute) * 60 + second) * 1_000_000
    if fraction:
        micros += int(fraction[:6].ljust(6, "0"))
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        off_hours, off_minutes = int(digits[:2]), int(digits[2:] or 0)
        if off_hours > 23 or off_minutes > 59:
            return None
        shift = (off_hours * 60 + off_minutes) * 60_000_000
        micros += -shift if offset[0] == "+" else shift
    return micros


# ---- the tree ------------------------------------------------------------------------


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
    """Bounds are all numbers or all strings; ``None`` means unbounded.

    :attr:`kind` says how values compare: ``"number"``, ``"date"`` (every bound is an
    ISO date: values compare as instants, see :attr:`instants`) or ``"string"`` (by
    code point).
    """

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
        return self.kind == "number"

    @cached_property
    def kind(self) -> str:
        bounds = self.bounds().values()
        if not any(isinstance(b, str) for b in bounds):
            return "number"
        return "date" if all(iso_instant(b) is not None for b in bounds) else "string"

    @cached_property
    def instants(self) -> dict[str, int]:
        """The bounds of a date range as instants (microseconds since the epoch, UTC)."""
        return {op: iso_instant(b) for op, b in self.bounds().items()} if self.kind == "date" else {}


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
        strings = [b for b in bounds.values() if isinstance(b, str)]
        if strings and len(strings) < len(bounds):
            raise FilterError(f"field {key!r}: range mixes string and number bounds: {bounds!r}")
        dates = [b for b in strings if iso_instant(b) is not None]
        if dates and len(dates) < len(strings):
            raise FilterError(
                f"field {key!r}: range mixes a date bound and a non-date string bound: {bounds!r} "
                "(dates are YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|+HH:MM])"
            )
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
    if isinstance(value, int) and not isinstance(value, bool):
        return _int64(key, op, value)
    if isinstance(value, float):
        return float(value)  # subclasses (numpy's float64) as the plain float
    return value


def _scalars(key: str, op: str, values: Iterable[Any]) -> tuple[Scalar, ...]:
    return tuple(_scalar(key, op, v) for v in values)


def _bound(key: str, op: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FilterError(f"field {key!r}: {op} takes a number or a string (e.g. an ISO date), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"field {key!r}: {op} bound must be finite, got {value!r}")
    if isinstance(value, int):
        return _int64(key, op, value)
    return float(value) if isinstance(value, float) else value


def _int64(key: str, op: str, value: int) -> int:
    if not is_int64(value):
        shown = str(value) if value.bit_length() < 200 else f"(an int of {len(str(abs(value)))} digits)"
        raise FilterError(
            f"field {key!r}: {op} value {shown} is outside the int64 range [-2**63, 2**63-1] of metadata "
            "ints; to compare with a number that large, use a float"
        )
    return int(value)  # an int subclass (IntEnum, numpy's) compares as the plain int


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




# Evaluation over many rows; filter_eval imports this module, which is complete by now.
from .filter_eval import Column, evaluate, filter_mask  # noqa: E402
