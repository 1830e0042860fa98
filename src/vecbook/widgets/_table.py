"""Nodes as rows: records, DataFrames and the small HTML tables the widgets show."""

from __future__ import annotations

import html
import json
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..node import VectorNode
from . import _deps
from .introspect import flatten_metadata

_RESERVED = ("id", "content", "score")


def node_record(node: VectorNode, score: float | None = None, content_chars: int | None = None) -> dict[str, Any]:
    """One row: id, (score), content, then the metadata flattened into columns.

    A metadata field named like a fixed column gets a ``meta.`` prefix; lists are kept.
    """
    content = node.content
    if content_chars is not None and len(content) > content_chars:
        content = content[: content_chars - 1] + "…"
    row: dict[str, Any] = {"id": node.unique_id}
    metadata = node.metadata
    if score is None and node.score is not None:
        score = node.score
        metadata = node.stored_metadata()
    if score is not None:
        row["score"] = round(float(score), 4)
    row["content"] = content
    for key, value in flatten_metadata(metadata).items():
        row[f"meta.{key}" if key in _RESERVED else key] = value
    return row


def records(nodes: Iterable[VectorNode], scores: Sequence[float] | None = None) -> list[dict[str, Any]]:
    nodes = list(nodes)
    return [node_record(n, None if scores is None else scores[i]) for i, n in enumerate(nodes)]


def frame(rows: list[dict[str, Any]], columns: Sequence[str] = ("id", "content")):
    """A DataFrame from records; the fixed columns come first even when there are no rows."""
    pd = _deps.pandas()
    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=list(columns))
    return df


def format_value(value: Any) -> str:
    """A cell's text: ints with thousands separators (154,571,315), floats to 4 significant digits
    (with separators above 1,000, in e-notation when tiny or huge), lists and dicts as JSON."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        magnitude = abs(value)
        if magnitude == 0 or magnitude == float("inf"):
            return str(value) if magnitude else "0"
        if magnitude < 1e-4 or magnitude >= 1e15:
            return f"{value:.3e}"
        if magnitude >= 1000:
            return f"{value:,.0f}" if magnitude >= 1e5 or value.is_integer() else f"{value:,.1f}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def is_number(value: Any) -> bool:
    """Ints and floats (numpy's too), not booleans."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _sort_key(value: Any) -> tuple:
    if value is None or (isinstance(value, float) and value != value):
        return (2, 0, "")
    if is_number(value):
        return (0, 0, value)
    if isinstance(value, str):
        return (0, 1, value.casefold())
    return (0, 2, format_value(value).casefold())


def sort_records(rows: list[dict[str, Any]], column: str | None, ascending: bool = True) -> list[dict[str, Any]]:
    """Rows ordered by ``column`` (numbers by value, text case-insensitively, empty cells always last);
    stable, so equal cells keep their order. ``None`` keeps the order given."""
    if not column:
        return list(rows)
    present = [r for r in rows if _sort_key(r.get(column))[0] == 0]
    missing = [r for r in rows if _sort_key(r.get(column))[0] != 0]
    present.sort(key=lambda r: _sort_key(r.get(column)), reverse=not ascending)
    return present + missing


_CELL = "padding:2px 6px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:{width}px"


def _cell(value: Any, max_chars: int) -> str:
    """One line: the text cut at ``max_chars`` (and by the cell's width), the full text on hover."""
    text = format_value(value)
    shown = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
    style = _CELL.format(width=420 if len(text) > 60 else 240) + (";text-align:right" if is_number(value) else "")
    title = f" title='{html.escape(text)}'" if text else ""
    return f"<td style='{style}'{title}>{html.escape(shown)}</td>"


def html_table(rows: list[dict[str, Any]], css_class: str, max_chars: int = 200, empty: str = "No rows.",
               selected: Iterable[str] = (), columns: Sequence[str] | None = None) -> str:
    """A compact table: one line per row (full text on hover), scrolling both ways, numbers formatted.

    Each row carries ``data-id``; rows whose id is in ``selected`` are marked ``vecbook-selected``.
    """
    if not rows:
        return f"<div class='{css_class} vecbook-empty' style='color:#666;padding:4px'>{html.escape(empty)}</div>"
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    chosen = set(selected)
    head = "".join(f"<th style='text-align:left;padding:2px 6px;white-space:nowrap'>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        mark = " class='vecbook-selected' style='background:#fff3c4'" if row.get("id") in chosen else ""
        cells = "".join(_cell(row.get(c), max_chars) for c in columns)
        body.append(f"<tr data-id='{html.escape(str(row.get('id', '')))}'{mark}>{cells}</tr>")
    return (
        f"<div style='max-height:340px;overflow:auto;border:1px solid #ddd'>"
        f"<table class='{css_class}' style='border-collapse:collapse;font-size:12px;min-width:100%'>"
        f"<thead style='position:sticky;top:0;background:#f5f5f5'><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def node_detail_html(node: VectorNode) -> str:
    """One node in full: id, content, metadata as JSON, vector summary."""
    metadata = json.dumps(node.metadata, ensure_ascii=False, default=str, indent=2)
    vector = "none" if node.vector is None else f"{len(node.vector)}-d float32 [" + ", ".join(f"{x:.4g}" for x in node.vector[:6]) + (", …]" if len(node.vector) > 6 else "]")
    return (
        "<div class='vecbook-node-detail' style='font-size:12px'>"
        f"<div><b>id</b> <code>{html.escape(node.unique_id)}</code></div>"
        f"<div style='white-space:pre-wrap;margin:4px 0'>{html.escape(node.content)}</div>"
        f"<pre style='margin:0;background:#f7f7f7;padding:4px'>{html.escape(metadata)}</pre>"
        f"<div style='color:#666'>vector: {html.escape(vector)}</div></div>"
    )


def message_html(text: str, kind: str = "info") -> str:
    """A one-line status (``info``) or error (``error``) box."""
    if not text:
        return ""
    colour = {"error": "#b00020", "warning": "#8a6d00"}.get(kind, "#555")
    return f"<div class='vecbook-{kind}' style='color:{colour};font-size:12px;white-space:pre-wrap'>{html.escape(text)}</div>"
