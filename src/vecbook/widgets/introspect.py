"""Metadata introspection: fields and their types, distinct values where few, min/max.

A field is a path through the metadata (a tuple of keys, one per nested dict),
so ``{"a": {"b": 1}}`` and ``{"a.b": 2}`` are two fields, ``("a", "b")`` and
``("a.b",)``; :func:`field_label` is how one reads (``a.b``, ``"a.b"``) and
``vecbook.filters.field_key`` its key in a filter dict (``a.b``, ``a\\.b``).

:func:`introspect_workspace` reads the store's introspection API
(``describe_metadata``: computed by the backend where it can), over every
node; :func:`introspect_metadata` does the same over metadata dicts at hand. This is what populates the search panel's
filter builder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from ..errors import FilterError
from ..filters import field_key, parse_filter

__all__ = [
    "FieldInfo",
    "WorkspaceSchema",
    "introspect_workspace",
    "introspect_metadata",
    "metadata_paths",
    "flat_rows",
    "flatten_metadata",
    "field_label",
    "resolve_field",
]

FieldPath = tuple[str, ...]

# ISO 8601 dates of at least month precision: 2026-06, 2026-06-01, 2026-06-01T12:00:00Z
_ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$")


def _quoted(segment: str) -> bool:
    return not segment or "." in segment or '"' in segment


def field_label(path: Sequence[str]) -> str:
    """How a metadata path reads in the UI and in table columns: segments joined by ``.``, a segment
    that holds a dot (or a quote, or nothing) in double quotes, so no two paths read the same.

    ``("author", "name")`` -> ``author.name``; ``("file.name",)`` -> ``"file.name"``.
    """
    return ".".join(json.dumps(part, ensure_ascii=False) if _quoted(part) else part for part in path)


def metadata_paths(metadata: Mapping[str, Any], prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Every leaf of the metadata by its path: ``{"a": {"b": 1}, "a.b": 2}`` -> ``{("a", "b"): 1, ("a.b",): 2}``.

    Nested (non-empty) dicts are walked; any other value, lists and empty dicts included, is a leaf.
    """
    flat: dict[FieldPath, Any] = {}
    for key, value in metadata.items():
        path = prefix + (str(key),)
        if isinstance(value, Mapping) and value:
            flat.update(metadata_paths(value, path))
        else:
            flat[path] = value
    return flat


def flatten_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The leaves by their :func:`field_label`: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, ``{"a.b": 2}`` -> ``{'"a.b"': 2}``."""
    if type(metadata) is dict and not any(type(v) is dict or type(k) is not str or _quoted(k) for k, v in metadata.items()):
        return dict(metadata)  # already flat, plain keys: the common case, and a map reads tens of thousands
    return {field_label(path): value for path, value in metadata_paths(metadata).items()}


def flat_rows(metadatas: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`flatten_metadata` of many rows, for a DataFrame: the dicts themselves (not copied: hand
    over copies) when every one is already flat with plain keys, as a lasso's 100,000 usually are;
    that is checked across all of them at once, not key by key."""
    if all(type(m) is dict for m in metadatas):
        keys = set().union(*metadatas)
        values = set(map(type, chain.from_iterable(map(dict.values, metadatas))))
        if dict not in values and all(type(k) is str and not _quoted(k) for k in keys):
            return metadatas
    return [flatten_metadata(m) for m in metadatas]


@dataclass
class FieldInfo:
    """What one metadata field holds across a workspace's nodes.

    ``path`` is the field's place in the metadata, one segment per nested dict
    (``("author", "name")``, or ``("file.name",)`` for a key holding a dot);
    ``name`` is how it reads and ``key`` its key in a filter dict.

    ``kind`` is ``"string"``, ``"date"`` (ISO strings), ``"integer"``, ``"number"``,
    ``"boolean"`` or ``"mixed"``. ``values`` lists the distinct values (sorted) when
    there are at most ``max_distinct`` of them, else ``None``. ``min``/``max`` are set
    for numbers and dates. ``is_list`` means some nodes hold a list of values.
    """

    path: FieldPath
    kind: str
    count: int
    values: list[Any] | None
    min: Any = None
    max: Any = None
    is_list: bool = False

    @property
    def name(self) -> str:
        """The field as the UI shows it (:func:`field_label`)."""
        return field_label(self.path)

    @property
    def key(self) -> str:
        """The field's key in a filter dict (``vecbook.filters.field_key``): ``file\\.name`` for ``("file.name",)``."""
        return field_key(self.path)

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("integer", "number")

    @property
    def is_ordered(self) -> bool:
        """Whether range filters make sense (numbers and dates)."""
        return self.kind in ("integer", "number", "date")


@dataclass
class WorkspaceSchema:
    """The fields of a workspace's metadata (by path), over all its ``total`` nodes."""

    workspace_id: str
    fields: dict[FieldPath, FieldInfo] = field(default_factory=dict)
    total: int = 0

    def describe(self) -> str:
        """One line for the UI."""
        n = len(self.fields)
        return f"{n} metadata field{'s' if n != 1 else ''}, from all {self.total:,} nodes"


class _Tally:
    __slots__ = ("count", "kinds", "distinct", "overflow", "lo", "hi", "slo", "shi", "is_list", "all_dates")

    def __init__(self):
        self.count = 0
        self.kinds: set[str] = set()
        self.distinct: set[Any] = set()
        self.overflow = False
        self.lo = self.hi = None  # numbers
        self.slo = self.shi = None  # strings
        self.is_list = False
        self.all_dates = True

    def add(self, value: Any, max_distinct: int) -> None:
        if isinstance(value, bool):
            self.kinds.add("boolean")
        elif isinstance(value, int):
            self.kinds.add("integer")
        elif isinstance(value, float):
            if not math.isfinite(value):
                return
            self.kinds.add("number")
        elif isinstance(value, str):
            self.kinds.add("string")
            if self.all_dates and not _ISO_DATE.match(value):
                self.all_dates = False
            self.slo = value if self.slo is None or value < self.slo else self.slo
            self.shi = value if self.shi is None or value > self.shi else self.shi
        else:
            self.kinds.add("other")
            return
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.lo = value if self.lo is None or value < self.lo else self.lo
            self.hi = value if self.hi is None or value > self.hi else self.hi
        if not self.overflow:
            # (type, value) keeps 1 and True apart: a filter never treats them as equal
            self.distinct.add((type(value).__name__, value))
            if len(self.distinct) > max_distinct:
                self.overflow = True
                self.distinct = set()

    def info(self, path: FieldPath) -> FieldInfo:
        kinds = self.kinds - {"other"} or self.kinds
        if kinds == {"integer"}:
            kind = "integer"
        elif kinds <= {"integer", "number"} and kinds:
            kind = "number"
        elif kinds == {"string"}:
            kind = "date" if self.all_dates else "string"
        elif kinds == {"boolean"}:
            kind = "boolean"
        else:
            kind = "mixed"
        values = None if self.overflow else sorted((v for _, v in self.distinct), key=lambda v: (str(type(v)), v))
        lo, hi = (self.lo, self.hi) if kind in ("integer", "number") else (self.slo, self.shi) if kind == "date" else (None, None)
        return FieldInfo(path, kind, self.count, values, lo, hi, self.is_list)


class Fields(dict):
    """Field infos by path; also looked up by any name :func:`resolve_field` takes (``fields["author.name"]``)."""

    def __missing__(self, ref: Any) -> FieldInfo:
        try:
            return self[resolve_field(self, ref)]
        except (FilterError, TypeError):
            raise KeyError(ref) from None


def introspect_metadata(metadatas: Iterable[Mapping[str, Any]], max_distinct: int = 30) -> Fields:
    """Field infos from metadata dicts, by path (nested dicts give longer paths), sorted."""
    tallies: dict[FieldPath, _Tally] = {}
    for metadata in metadatas:
        for path, value in metadata_paths(metadata).items():
            if value is None:
                continue
            tally = tallies.get(path)
            if tally is None:
                tally = tallies[path] = _Tally()
            if isinstance(value, (list, tuple)):
                tally.is_list = True
                items = [v for v in value if v is not None]
                if not items:
                    continue
                for item in items:
                    tally.add(item, max_distinct)
            else:
                tally.add(value, max_distinct)
            tally.count += 1
    return Fields((path, tallies[path].info(path)) for path in sorted(tallies))


def resolve_field(fields: Mapping[FieldPath, Any], ref: str | Sequence[str]) -> FieldPath:
    """The path of a known field named by ``ref``: a path (tuple of segments), the field's label
    (``author.name``, ``"file.name"``), its filter key (``file\\.name``) or a raw metadata key
    (``file.name``, when no nested path reads the same). Raises FilterError for an unknown field.
    """
    if not isinstance(ref, str):
        path = tuple(ref)
        if path in fields:
            return path
    else:
        by_label = {field_label(p): p for p in fields}
        if ref in by_label:
            return by_label[ref]
        try:
            path = parse_filter({ref: {"exists": True}}).path  # the filter language's own reading of the key
        except FilterError:
            path = None
        if path in fields:
            return path
        if (ref,) in fields:
            return (ref,)
    known = ", ".join(field_label(p) for p in fields)
    raise FilterError(f"unknown field {ref!r}; known: {known}")


def introspect_workspace(store, workspace_id: str, max_distinct: int = 30) -> WorkspaceSchema:
    """Introspect a workspace's metadata through the store's introspection API, over every node.

    One ``store.describe_metadata`` call: the fields with their types and counts, the
    values of those with at most ``max_distinct`` of them, and their min/max (computed by
    the backend where it can, else in one pass over the nodes).
    """
    total = store.count(workspace_id)
    fields = Fields()
    for summary in store.describe_metadata(workspace_id, max_values=max(0, max_distinct)):
        fields[summary.field.path] = _field_info(summary)
    return WorkspaceSchema(workspace_id, fields, total=total)


def _field_info(summary) -> FieldInfo:
    """A FieldInfo from a store's FieldSummary."""
    found, bounds = summary.field, summary.range
    types = set(found.types)
    kinds = {t for t in types if t not in ("object", "list")} or {"other"}
    if kinds == {"integer"}:
        kind = "integer"
    elif kinds <= {"integer", "float"}:
        kind = "number"
    elif kinds == {"string"}:
        kind = "date" if bounds.kind == "date" else "string"
    elif kinds == {"boolean"}:
        kind = "boolean"
    else:
        kind = "mixed"
    lo, hi = (bounds.min, bounds.max) if kind in ("integer", "number", "date") else (None, None)
    values = None
    if summary.values is not None and kinds != {"other"}:
        values = sorted((v.value for v in summary.values), key=lambda v: (str(type(v)), v))
    return FieldInfo(found.path, kind, found.count, values, lo, hi, "list" in types)
