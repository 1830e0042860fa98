"""A filter typed by hand: parsed with readable errors, its fields checked against the workspace.

``parse_filter_text`` reads JSON or a Python dict literal and says what is wrong
and where (``line 1, column 7``), never a parser's internal object. ``unknown_fields``
names the fields a filter uses that the workspace does not have, with the close
matches (difflib) as "did you mean". ``example_filter`` builds the text box's
example from the workspace's own fields.
"""

from __future__ import annotations

import ast
import difflib
import json

from ..errors import FilterError
from ..filters import And, Not, Or, parse_filter
from .introspect import WorkspaceSchema, field_label

__all__ = ["describe_unknown", "example_filter", "parse_filter_text", "placeholder", "unknown_fields"]

_EXAMPLE = 'e.g. {"field": {"gte": 1}}'
_PYTHON_NAMES = {"true": "True", "false": "False", "null": "None"}


def _position(text: str, line: int, column: int) -> str:
    """``line L, column C`` (1-based), with the line and a caret under the spot when the text has several lines."""
    where = f"line {line}, column {column}" if "\n" in text.strip() else f"column {column}"
    lines = text.splitlines() or [""]
    shown = lines[min(max(line, 1), len(lines)) - 1]
    return f"{where}:\n  {shown}\n  {' ' * (max(column, 1) - 1)}^"


def _first_non_literal(tree: ast.AST) -> ast.AST | None:
    """The first node a literal cannot hold (a name, a comparison, a call...), in source order."""
    allowed = (ast.Expression, ast.Dict, ast.List, ast.Tuple, ast.Set, ast.Constant, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load)
    bad = [n for n in ast.walk(tree) if not isinstance(n, allowed) and hasattr(n, "col_offset")]
    return min(bad, key=lambda n: (n.lineno, n.col_offset)) if bad else None


def _syntax_message(text: str) -> str:
    """Why ``text`` is neither JSON nor a Python literal, naming the spot."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        reason = (exc.msg or "invalid syntax").rstrip(".")
        return f"the filter is not valid: {reason} at {_position(text, exc.lineno or 1, exc.offset or 1)}"
    node = _first_non_literal(tree)
    if node is None:
        return f"the filter is not valid JSON nor a Python literal: write it as a dict, {_EXAMPLE}"
    segment = ast.get_source_segment(text, node) or type(node).__name__
    hint = ""
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null"):
        hint = f" (JSON's {node.id} needs the whole filter in strict JSON; in Python write {_PYTHON_NAMES[node.id]})"
    elif isinstance(node, ast.Name):
        hint = " (put field names and text values in quotes)"
    elif isinstance(node, ast.Compare):
        hint = ' (write comparisons as operators: {"rank": {"lte": 100}})'
    return f"the filter is not valid: {segment!s} is not a value{hint}, at {_position(text, node.lineno, node.col_offset + 1)}"


def parse_filter_text(text: str) -> dict | None:
    """A filter typed by hand, as JSON or a Python literal; empty means none.

    Raises FilterError naming the problem and its position, or the filter language's own error.
    """
    text = (text or "").strip()
    if text.startswith("filter_dict"):
        text = text.split("=", 1)[1].strip() if "=" in text else ""
    if not text or text in ("None", "null", "{}"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise FilterError(_syntax_message(text)) from None
    if not isinstance(value, dict):
        raise FilterError(f"a filter must be a dict, got {type(value).__name__}: {_EXAMPLE}")
    parse_filter(value)
    return value or None


def _paths(node) -> list[tuple[str, ...]]:
    if node is None:
        return []
    if isinstance(node, (And, Or)):
        return [p for child in node.children for p in _paths(child)]
    if isinstance(node, Not):
        return _paths(node.child)
    return [tuple(node.path)]


def unknown_fields(filter_dict: dict | None, schema: WorkspaceSchema) -> dict[str, list[str]]:
    """The fields ``filter_dict`` names that ``schema`` does not know, each with its close matches.

    Empty when every field is known, or when the schema knows nothing (an empty workspace).
    """
    if not filter_dict or not schema.fields:
        return {}
    known = {field_label(p): p for p in schema.fields}
    out: dict[str, list[str]] = {}
    for path in _paths(parse_filter(filter_dict)):
        if path in schema.fields:
            continue
        label = field_label(path)
        # A prefix of a known path is a nested dict: a filter on it compares dicts, still a field.
        if any(p[: len(path)] == path for p in schema.fields):
            continue
        out[label] = difflib.get_close_matches(label, list(known), n=3, cutoff=0.6)
    return out


def describe_unknown(unknown: dict[str, list[str]], schema: WorkspaceSchema) -> str:
    """``unknown field 'rnak' (did you mean 'rank'?)``, one clause per field, then the known fields."""
    parts = []
    for label, close in unknown.items():
        guess = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        parts.append(f"unknown field {label!r}{guess}")
    known = ", ".join(field_label(p) for p in list(schema.fields)[:12]) + (", …" if len(schema.fields) > 12 else "")
    return f"{'; '.join(parts)}; the fields in all {schema.total:,} nodes are: {known}"


def example_filter(schema: WorkspaceSchema) -> dict | None:
    """A filter over this workspace's own fields, for the text box's placeholder (``None`` if it has none).

    Prefers a range on a number (between its min and max), then a value of a field with few values.
    """
    infos = list(schema.fields.values())
    for info in infos:
        if info.is_numeric and info.min is not None and info.min != info.max:
            return {info.key: {"lte": info.max if info.kind != "integer" else (info.min + info.max) // 2}}
    for info in infos:
        if info.values and info.kind in ("string", "boolean", "integer"):
            return {info.key: info.values[0]}
    for info in infos:
        if info.kind == "date" and info.min is not None:
            return {info.key: {"gte": info.min}}
    return {infos[0].key: {"exists": True}} if infos else None


def placeholder(schema: WorkspaceSchema) -> str:
    """The filter text box's placeholder, from the workspace's own fields."""
    example = example_filter(schema)
    if example is None:
        return "or type a filter (this workspace has no metadata fields yet)"
    return f"or type a filter, e.g. {json.dumps(example, ensure_ascii=False)} (overrides the builder)"
