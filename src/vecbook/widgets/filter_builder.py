"""The filter builder's state: clauses over introspected fields -> a portable filter dict.

Plain Python (no widgets), so tests drive it directly. The dicts it emits are
exactly the forms of :mod:`vecbook.filters`: a clause's field is a metadata
path, written into the dict with ``vecbook.filters.field_key`` (a key that holds
a dot is escaped, ``{"file\\.name": ...}``), so the dict pasted into
``store.search(..., filter_dict=...)`` selects what the builder showed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import FilterError
from ..filters import field_key, parse_filter
from .filter_text import parse_filter_text
from .introspect import FieldInfo, FieldPath, field_label, resolve_field

__all__ = ["FilterClause", "FilterBuilder", "OPS", "ops_for", "parse_value", "parse_filter_text", "format_filter"]

# op -> label; "between" is a gte/lte pair, "missing" is exists: false
OPS: dict[str, str] = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "nin": "is none of",
    "between": "between",
    "gte": "≥",
    "gt": ">",
    "lte": "≤",
    "lt": "<",
    "exists": "exists",
    "missing": "is missing",
}
_BY_KIND = {
    "string": ("eq", "ne", "in", "nin", "exists", "missing"),
    "date": ("between", "gte", "lt", "eq", "in", "exists", "missing"),
    "integer": ("between", "eq", "ne", "gte", "gt", "lte", "lt", "in", "exists", "missing"),
    "number": ("between", "gte", "gt", "lte", "lt", "eq", "ne", "exists", "missing"),
    "boolean": ("eq", "exists", "missing"),
    "mixed": ("eq", "ne", "in", "nin", "exists", "missing"),
}
MULTI = ("in", "nin")
NO_VALUE = ("exists", "missing")


def ops_for(info: FieldInfo | None) -> tuple[str, ...]:
    """The operators offered for a field, most useful first."""
    if info is None:
        return _BY_KIND["mixed"]
    return _BY_KIND.get(info.kind, _BY_KIND["mixed"])


def parse_value(text: Any, info: FieldInfo | None) -> Any:
    """A typed value from a text box, for the field's kind; ``""`` is ``None``. Raises FilterError."""
    if not isinstance(text, str):
        return text
    text = text.strip()
    if text == "":
        return None
    kind = info.kind if info else "mixed"
    if kind in ("integer", "number"):
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise FilterError(f"{info.name}: {text!r} is not a number") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise FilterError(f"{info.name}: {text!r} is not a finite number")
            return value
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise FilterError(f"{info.name}: {text!r} is not true or false")
    return text


@dataclass
class FilterClause:
    """One condition: ``field`` ``op`` ``value``.

    ``field`` is a metadata path (a tuple of keys, as introspection gives it) or
    a string taken as a filter key as it is (``"author.name"``, ``"file\\.name"``).
    ``value`` is a scalar (eq, ne, gte, gt, lte, lt), a list (in, nin), a
    ``(low, high)`` pair with ``None`` for an open end (between), or unused
    (exists, missing). An incomplete clause emits nothing.
    """

    field: FieldPath | str = ""
    op: str = "eq"
    value: Any = None

    @property
    def key(self) -> str:
        """The field's key in the filter dict."""
        return self.field if isinstance(self.field, str) else field_key(self.field)

    @property
    def label(self) -> str:
        """The field as the UI shows it."""
        return self.field if isinstance(self.field, str) else field_label(self.field)

    def to_dict(self) -> dict | None:
        """This condition as a filter dict, or ``None`` while it is incomplete."""
        if not self.field:
            return None
        f, op, v = self.key, self.op, self.value
        if op == "exists":
            return {f: {"exists": True}}
        if op == "missing":
            return {f: {"exists": False}}
        if op == "between":
            lo, hi = (tuple(v) + (None, None))[:2] if isinstance(v, (list, tuple)) else (None, None)
            bounds = {k: b for k, b in (("gte", lo), ("lte", hi)) if b is not None}
            return {f: bounds} if bounds else None
        if op in MULTI:
            values = [x for x in (v or []) if x is not None]
            if not values:
                return None
            return {f: values} if op == "in" else {f: {"nin": values}}
        if v is None:
            return None
        if op == "eq":
            return {f: v}
        if op in OPS:
            return {f: {op: v}}
        raise FilterError(f"unknown operator {op!r}")

    def describe(self) -> str:
        """The condition in words, e.g. ``year between (2005, 2010)``."""
        label = OPS.get(self.op, self.op)
        if self.op in NO_VALUE:
            return f"{self.label} {label}"
        return f"{self.label} {label} {self.value!r}"


@dataclass
class FilterBuilder:
    """A list of clauses joined by ``combine`` (``"all"`` = AND, ``"any"`` = OR), over known fields (by path)."""

    fields: dict[FieldPath, FieldInfo] = field(default_factory=dict)
    clauses: list[FilterClause] = field(default_factory=list)
    combine: str = "all"

    def add(self, field_name: str | Sequence[str] = "", op: str | None = None, value: Any = None) -> FilterClause:
        """Append a clause; ``op`` defaults to the field's first operator.

        With known fields, ``field_name`` names one of them by path, label, filter key or raw
        metadata key (see ``introspect.resolve_field``); without, it is a filter key.
        """
        path: FieldPath | str = field_name if isinstance(field_name, str) else tuple(field_name)
        if field_name and self.fields:
            path = resolve_field(self.fields, field_name)
        if op is None:
            op = ops_for(self.fields.get(path))[0] if field_name else "eq"
        if op not in OPS:
            raise FilterError(f"unknown operator {op!r}; valid: {', '.join(OPS)}")
        clause = FilterClause(path, op, value)
        self.clauses.append(clause)
        return clause

    def remove(self, index: int) -> None:
        """Drop the clause at ``index``."""
        del self.clauses[index]

    def clear(self) -> None:
        """Drop every clause."""
        self.clauses.clear()

    def to_filter(self) -> dict | None:
        """The portable filter dict (``None`` when no clause is complete); checked by ``parse_filter``."""
        parts = [d for d in (c.to_dict() for c in self.clauses) if d is not None]
        if not parts:
            return None
        if len(parts) == 1:
            result = parts[0]
        elif self.combine == "any":
            result = {"$or": parts}
        else:
            keys = [next(iter(p)) for p in parts]
            result = {k: p[k] for k, p in zip(keys, parts)} if len(set(keys)) == len(keys) else {"$and": parts}
        parse_filter(result)  # the builder must never emit a filter the stores refuse
        return result


def format_filter(filter_dict: dict | None) -> str:
    """The filter as a line of Python to paste into code."""
    return f"filter_dict={filter_dict!r}"
