"""A deliberately naive, per-node implementation of the filter semantics in vecbook.filters' docstring.

Tests compare every backend against this, so it shares no code with vecbook.
"""

from __future__ import annotations

from typing import Any

OPS = {"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists"}


def values(metadata: dict, key: str) -> list:
    value: Any = metadata
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    if value is None or isinstance(value, dict):
        return []
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, (str, int, float, bool))]


def present(metadata: dict, key: str) -> bool:
    value: Any = metadata
    for part in key.split("."):
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
    return float(a) == float(b)


def in_range(v: Any, bounds: dict) -> bool:
    numeric = not isinstance(next(iter(bounds.values())), str)
    if numeric and (isinstance(v, (bool, str))):
        return False
    if not numeric and not isinstance(v, str):
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
