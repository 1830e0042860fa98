"""Parsed filters evaluated over many nodes at once: one numpy :class:`Column` per field path.

The reference semantics (``vecbook.filters``' docstring), kept fast: numbers are
compared as float64 arrays and only the elements where float64 cannot decide (an
int that float64 does not hold exactly, or an operand that it does not) are
compared again as Python numbers; strings are ids into a per-column vocabulary
of Python strings (never numpy ``<U`` arrays, which drop trailing NULs), ranked
in code-point order when a string range needs it and parsed as ISO dates when a
date range does, each distinct string once.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from .filters import _ABSENT, _SCALARS, And, Exists, FilterNode, Not, Or, Path, Range, Scalar, _lookup, _present, iso_instant

__all__ = ["Column", "evaluate", "filter_mask"]

_STR, _NUM, _BOOL = 0, 1, 2
_INT, _FLOAT = 3, 4  # while reading only: both are _NUM in a Column
_KIND_OF = {str: _STR, int: _INT, float: _FLOAT, bool: _BOOL, type(None): -1}
_SCALAR_TYPES = frozenset(_KIND_OF)
_EXACT = 2**53  # every int of at most this size is exactly a float64
_OPS: dict[str, Callable[[Any, Any], Any]] = {"eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


class _Strings:
    """The distinct strings of a column, append-only (ids in first-seen order), shared by the
    columns :meth:`Column.with_rows` derives; code-point ranks and ISO instants are computed
    when a range first needs them and extended as strings are added."""

    __slots__ = ("items", "ids", "_sorted", "_order", "_rank", "_instants", "_is_date")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.ids: dict[str, int] = {}
        self._sorted: list[str] | None = None  # the items in code-point order ...
        self._order: list[int] = []  # ... and their ids
        self._rank = np.zeros(0, dtype=np.int64)  # id -> position in _sorted
        self._instants = np.zeros(0, dtype=np.int64)  # id -> microseconds since the epoch (0 if not a date)
        self._is_date = np.zeros(0, dtype=bool)

    def find(self, value: str) -> int:
        return self.ids.get(value, -1)

    def ranked(self) -> tuple[list[str], np.ndarray]:
        """The strings in code-point order, and each id's position in that order."""
        n = len(self.items)
        if self._sorted is None or n - len(self._order) > 1000:
            self._order = sorted(range(n), key=self.items.__getitem__)
            self._sorted = [self.items[i] for i in self._order]
        elif len(self._order) < n:
            for i in range(len(self._order), n):
                at = bisect.bisect_right(self._sorted, self.items[i])
                self._sorted.insert(at, self.items[i])
                self._order.insert(at, i)
        else:
            return self._sorted, self._rank
        self._rank = np.empty(n, dtype=np.int64)
        self._rank[np.asarray(self._order, dtype=np.int64)] = np.arange(n)
        return self._sorted, self._rank

    def instants(self) -> tuple[np.ndarray, np.ndarray]:
        """Each id's instant (int64 microseconds, UTC) and whether it is an ISO date at all."""
        done, n = len(self._is_date), len(self.items)
        if done < n:
            found = [iso_instant(s) for s in self.items[done:]]
            self._instants = np.concatenate([self._instants, np.asarray([t or 0 for t in found], dtype=np.int64)])
            self._is_date = np.concatenate([self._is_date, np.asarray([t is not None for t in found], dtype=bool)])
        return self._instants, self._is_date


class Column:
    """One field's values over many rows, exploded: one element per (row, value).

    ``num`` holds every number as float64; ``big_at`` lists (sorted) the elements
    whose value is an int that float64 does not hold exactly, ``big`` their exact values.
    """

    __slots__ = ("rows", "kind", "num", "code", "strings", "big_at", "big", "n_rows", "present", "path")

    def __init__(self, metadatas: Sequence[Mapping[str, Any] | None], path: Path, strings: _Strings | None = None):
        self.path = path
        self.strings = _Strings() if strings is None else strings
        self.n_rows = len(metadatas)
        if len(path) == 1 and {dict}.issuperset(map(type, metadatas)):  # the common case, in C
            values = list(map(dict.get, metadatas, repeat(path[0])))
        else:
            values = [None if (v := _lookup(m, path) if m else None) is _ABSENT else v for m in metadatas]
        if _SCALAR_TYPES.issuperset(map(type, values)):
            self._read_scalars(values)
        else:
            self._read_each(values)

    def _read_scalars(self, values: list[Any]) -> None:
        """One scalar (or nothing) per row: typed with numpy, one element per row holding a value."""
        kind_of = np.fromiter(map(_KIND_OF.__getitem__, map(type, values)), dtype=np.int8, count=len(values))
        self.present = kind_of >= 0
        self.rows = np.flatnonzero(self.present)
        kind = kind_of[self.rows]
        self.num = np.full(len(self.rows), math.nan)
        self.code = np.full(len(self.rows), -1, dtype=np.int64)
        self.big_at, self.big = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        for k in np.unique(kind).tolist():
            at = np.flatnonzero(kind == k)
            picked = values if len(at) == len(values) else [values[r] for r in self.rows[at].tolist()]
            if k == _STR:
                ids, items = self.strings.ids, self.strings.items
                for text in dict.fromkeys(picked):  # new strings numbered in first-seen order
                    if text not in ids:
                        ids[text] = len(items)
                        items.append(text)
                self.code[at] = np.fromiter(map(ids.__getitem__, picked), dtype=np.int64, count=len(picked))
            elif k == _INT:
                try:
                    exact = np.asarray(picked, dtype=np.int64)
                except OverflowError:  # beyond int64: metadata that clean_metadata never lets in
                    return self._read_each(values)
                self.num[at] = exact
                wide = np.flatnonzero(np.abs(exact) > _EXACT)
                if len(wide):
                    lost = np.asarray([float(v) != v for v in exact[wide].tolist()], dtype=bool)
                    self.big_at, self.big = at[wide[lost]], exact[wide[lost]]
            else:  # floats, and booleans as 1.0/0.0
                self.num[at] = np.asarray(picked, dtype=np.float64)
        kind[kind == _INT] = _NUM
        kind[kind == _FLOAT] = _NUM
        self.kind = kind

    def _read_each(self, values: list[Any]) -> None:
        """Any values (lists, subclasses of str/int/float), walked one by one."""
        ids, items = self.strings.ids, self.strings.items
        rows: list[int] = []
        kinds: list[int] = []
        nums: list[float] = []
        codes: list[int] = []  # of the strings only
        big_at: list[int] = []
        big: list[int] = []
        add_row, add_kind, add_num, nan, exact = rows.append, kinds.append, nums.append, math.nan, _EXACT
        present = np.zeros(len(values), dtype=bool)
        for row, value in enumerate(values):
            if value is _ABSENT or value is None:
                continue
            present[row] = _present(value)
            for v in (value,) if isinstance(value, _SCALARS) else value if isinstance(value, (list, tuple)) else ():
                cls = v.__class__
                if cls is not int and cls is not str and cls is not float and cls is not bool:
                    if isinstance(v, str):  # subclasses compare as the plain value
                        v, cls = str(v), str
                    elif isinstance(v, float):
                        v, cls = float(v), float
                    elif isinstance(v, int):
                        v, cls = int(v), int
                    else:
                        continue
                add_row(row)
                if cls is int:
                    add_kind(_NUM)
                    if -exact <= v <= exact:
                        add_num(float(v))
                        continue
                    try:
                        high = float(v)
                    except OverflowError:  # beyond float64: metadata that clean_metadata never lets in
                        high = math.inf if v > 0 else -math.inf
                    if high != v:
                        big_at.append(len(rows) - 1)
                        big.append(v)
                    add_num(high)
                elif cls is str:
                    code = ids.get(v)
                    if code is None:
                        code = ids[v] = len(items)
                        items.append(v)
                    add_kind(_STR)
                    add_num(nan)
                    codes.append(code)
                elif cls is float:
                    add_kind(_NUM)
                    add_num(v)
                else:
                    add_kind(_BOOL)
                    add_num(1.0 if v else 0.0)
        self.present = present
        self.rows = np.asarray(rows, dtype=np.int64)
        self.kind = np.asarray(kinds, dtype=np.int8)
        self.num = np.asarray(nums, dtype=np.float64)
        self.code = np.full(len(rows), -1, dtype=np.int64)  # -1: not a string
        if codes:
            self.code[self.kind == _STR] = codes
        self.big_at = np.asarray(big_at, dtype=np.int64)
        try:
            self.big = np.asarray(big, dtype=np.int64)  # exact: metadata ints lie in int64 ...
        except OverflowError:  # ... unless they did not go through clean_metadata
            self.big = np.empty(len(big), dtype=object)
            self.big[:] = big

    def with_rows(self, metadatas: Sequence[Mapping[str, Any] | None], rows: np.ndarray) -> Column:
        """This column after ``rows`` of ``metadatas`` changed (rewritten or appended): a new Column.

        Costs numpy work over the elements, not a Python pass over every row:
        the old elements of those rows are dropped and theirs re-read.
        """
        part = Column([metadatas[r] for r in rows], self.path, self.strings)
        rows = np.asarray(rows, dtype=np.int64)
        keep = ~np.isin(self.rows, rows) if len(rows) and len(self.rows) else np.ones(len(self.rows), dtype=bool)
        out = object.__new__(Column)
        out.path, out.strings = self.path, self.strings
        out.n_rows = len(metadatas)
        out.present = np.zeros(out.n_rows, dtype=bool)
        out.present[: self.n_rows] = self.present
        out.present[rows] = part.present
        out.rows = np.concatenate([self.rows[keep], rows[part.rows]])
        out.kind = np.concatenate([self.kind[keep], part.kind])
        out.num = np.concatenate([self.num[keep], part.num])
        out.code = np.concatenate([self.code[keep], part.code])
        kept_big = keep[self.big_at]
        renumbered = (np.cumsum(keep) - 1)[self.big_at[kept_big]] if len(self.big_at) else self.big_at
        out.big_at = np.concatenate([renumbered, part.big_at + int(keep.sum())])
        out.big = np.concatenate([self.big[kept_big], part.big])
        return out

    # ---- element masks ---------------------------------------------------------------

    def _compare(self, op: str, value: int | float) -> np.ndarray:
        """``element OP value`` for the numbers (other elements: don't care, the caller masks by kind)."""
        compare, high = _OPS[op], float(value)
        with np.errstate(invalid="ignore"):
            mask = compare(self.num, high)
        # Rounding to float64 never reverses an order, so only elements whose float64 equals
        # ``high`` can be misjudged, and only if one side is not exactly its float64.
        # (Exact values are compared as Python numbers: numpy would compare an int64 with a
        # float as two float64s.)
        if value.__class__ is float or high == value:
            if len(self.big_at):
                tied = self.num[self.big_at] == high
                if tied.any():
                    mask[self.big_at[tied]] = [compare(x, value) for x in self.big[tied].tolist()]
        else:
            tied = np.flatnonzero(self.num == high)
            if len(tied):
                exact = self.num[tied].tolist()
                if len(self.big_at):
                    at = np.minimum(np.searchsorted(self.big_at, tied), len(self.big_at) - 1)
                    hit = np.flatnonzero(self.big_at[at] == tied)
                    for k, x in zip(hit.tolist(), self.big[at[hit]].tolist()):
                        exact[k] = x
                mask[tied] = [compare(x, value) for x in exact]
        return mask

    def equals(self, value: Scalar) -> np.ndarray:
        if isinstance(value, bool):
            return (self.kind == _BOOL) & (self.num == float(value))
        if isinstance(value, str):
            code = self.strings.find(value)
            return self.code == code if code >= 0 else np.zeros(len(self.rows), dtype=bool)
        return (self.kind == _NUM) & self._compare("eq", value)

    def one_of(self, values: Sequence[Scalar]) -> np.ndarray:
        mask = np.zeros(len(self.rows), dtype=bool)
        codes = [c for c in (self.strings.find(v) for v in values if isinstance(v, str)) if c >= 0]
        if codes:
            mask |= np.isin(self.code, codes)
        for value in values:
            if not isinstance(value, str):
                mask |= self.equals(value)
        return mask

    def in_range(self, node: Range) -> np.ndarray:
        if node.kind == "number":
            mask = self.kind == _NUM
            for op, bound in node.bounds().items():
                mask &= self._compare(op, bound)
            return mask
        # Decide per distinct string, then look each element's string up (code -1, not a
        # string, reads the False appended at the end).
        if node.kind == "date":
            instants, decided = self.strings.instants()
            decided = decided.copy()
            for op, bound in node.instants.items():
                decided &= _OPS[op](instants, bound)
        else:
            ordered, rank = self.strings.ranked()
            lo, hi = 0, len(ordered)
            if node.gte is not None:
                lo = max(lo, bisect.bisect_left(ordered, node.gte))
            if node.gt is not None:
                lo = max(lo, bisect.bisect_right(ordered, node.gt))
            if node.lte is not None:
                hi = min(hi, bisect.bisect_right(ordered, node.lte))
            if node.lt is not None:
                hi = min(hi, bisect.bisect_left(ordered, node.lt))
            decided = (rank >= lo) & (rank < hi)
        return np.append(decided, False)[self.code]

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
