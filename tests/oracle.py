"""A deliberately naive, per-node implementation of the filter semantics in vecbook.filters' docstring.

Tests compare every backend against this, so it shares no code with vecbook.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

OPS = {"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists"}


def split_key(key: str) -> list[str]:
    """Path segments of a filter key: ``.`` separates, ``\\.`` and ``\\\\`` are a literal dot and backslash."""
    parts, current, escaped = [], "", False
    for char in key:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts, current = parts + [current], ""
        else:
            current += char
    return parts + [current]


def values(metadata: dict, key: str) -> list:
    value: Any = metadata
    for part in split_key(key):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    if value is None or isinstance(value, dict):
        return []
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, (str, int, float, bool))]


def present(metadata: dict, key: str) -> bool:
    value: Any = metadata
    for part in split_key(key):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    if isinstance(value, list):
        return any(v is not None for v in value)
    if isinstance(value, dict):
        return value != {}
    return value is not None


def same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b  # Python compares ints and floats exactly


_DATE = re.compile(r"([0-9]{4})-([0-9]{2})(?:-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def instant(text: str) -> int | None:
    """Microseconds since the epoch of an ISO date as the filter docs define it, else None."""
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    tz = timezone.utc
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        tz = timezone((-1 if offset[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes))
    try:
        dt = datetime(int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0), int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None
    return (dt - _EPOCH) // timedelta(microseconds=1)


def in_range(v: Any, bounds: dict) -> bool:
    strings = [b for b in bounds.values() if isinstance(b, str)]
    if not strings:
        if isinstance(v, (bool, str)):
            return False
    elif all(instant(b) is not None for b in strings):  # a date range: compare instants
        if not isinstance(v, str) or instant(v) is None:
            return False
        v, bounds = instant(v), {op: instant(b) for op, b in bounds.items()}
    elif not isinstance(v, str):
        return False
    checks = {"gt": lambda b: v > b, "gte": lambda b: v >= b, "lt": lambda b: v < b, "lte": lambda b: v <= b}
    return all(checks[op](b) for op, b in bounds.items())


def matches(metadata: dict, spec: dict) -> bool:
    for key, cond in spec.items():
        if key == "$and":
            ok = all(matches(metadata, c) for c in cond)
        elif key == "$or":
            ok = any(matches(metadata, c) for c in cond)
        elif key == "$not":
            ok = not matches(metadata, cond)
        else:
            ok = field_matches(values(metadata, key), cond, present(metadata, key))
        if not ok:
            return False
    return True


def field_matches(vals: list, cond: Any, is_present: bool) -> bool:
    if isinstance(cond, list):
        return any(same(v, c) for v in vals for c in cond)
    if not isinstance(cond, dict):
        return any(same(v, cond) for v in vals)
    ops = {k.lstrip("$"): b for k, b in cond.items()}
    bounds = {k: b for k, b in ops.items() if k in ("gt", "gte", "lt", "lte")}
    ok = True
    if bounds:
        ok &= any(in_range(v, bounds) for v in vals)
    if "eq" in ops:
        ok &= any(same(v, ops["eq"]) for v in vals)
    if "ne" in ops:
        ok &= not any(same(v, ops["ne"]) for v in vals)
    if "in" in ops:
        ok &= any(same(v, c) for v in vals for c in ops["in"])
    if "nin" in ops:
        ok &= not any(same(v, c) for v in vals for c in ops["nin"])
    if "exists" in ops:
        ok &= is_present == ops["exists"]
    return ok
