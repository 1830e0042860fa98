"""TableView: a table the user clicks (select a row, sort by a column), as an anywidget.

The view only draws: the rows arrive already ordered and formatted (``_table``),
and a click or a header click comes back as a message that the owning state
handles (``SearchState.focus`` / ``sort``, ``BrowserState.click`` / ``sort``).
One line per row, the full text on hover, scrolling both ways, numbers right-aligned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import _deps, _table

__all__ = ["TableView", "table_rows"]

# What a table sends to the browser is bounded (one websocket message per redraw): at most
# MAX_ROWS rows, cells cut at MAX_CELL characters (one line shows fewer), hover texts at MAX_TITLE.
MAX_ROWS = 500
MAX_CELL = 160
MAX_TITLE = 600

_ESM = r"""
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "vecbook-table-scroll";
  el.appendChild(box);
  const draw = () => {
    const rows = model.get("rows"), cols = model.get("columns"), cls = model.get("css_class");
    box.replaceChildren();
    if (!rows.length) {
      const d = document.createElement("div");
      d.className = cls + " vecbook-empty";
      d.textContent = model.get("empty");
      box.appendChild(d);
      return;
    }
    const table = document.createElement("table");
    table.className = cls + " vecbook-table";
    const head = table.createTHead().insertRow();
    const sortBy = model.get("sort_by"), asc = model.get("ascending");
    for (const c of cols) {
      const th = document.createElement("th");
      th.textContent = c;
      th.title = "sort by " + c;
      if (c === sortBy) th.dataset.sort = asc ? "asc" : "desc";
      th.addEventListener("click", () => model.send({ event: "sort", column: c }));
      head.appendChild(th);
    }
    const selected = new Set(model.get("selected"));
    const body = table.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.id = r.id;
      if (selected.has(r.id)) tr.className = "vecbook-selected";
      tr.addEventListener("click", (e) =>
        model.send({ event: "click", id: r.id, toggle: e.ctrlKey || e.metaKey || e.shiftKey }));
      r.cells.forEach((text, i) => {
        const td = tr.insertCell();
        td.textContent = text;
        td.title = r.titles[i] || text;
        if (r.num[i]) td.className = "vecbook-num";
      });
    }
    box.appendChild(table);
    if (model.get("note")) {
      const note = document.createElement("div");
      note.className = "vecbook-table-note";
      note.textContent = model.get("note");
      box.appendChild(note);
    }
  };
  for (const name of ["rows", "columns", "sort_by", "ascending", "selected", "empty", "css_class", "note"]) {
    model.on("change:" + name, draw);
  }
  draw();
}
export default { render };
"""

_CSS = """
.vecbook-table-scroll { max-height: 340px; overflow: auto; border: 1px solid #ddd; }
.vecbook-table-scroll .vecbook-empty, .vecbook-table-note { color: #666; padding: 4px; font-size: 12px; }
.vecbook-table { border-collapse: collapse; font-size: 12px; min-width: 100%; }
.vecbook-table thead th { position: sticky; top: 0; background: #f5f5f5; text-align: left; padding: 2px 6px;
  white-space: nowrap; cursor: pointer; user-select: none; }
.vecbook-table th[data-sort="asc"]::after { content: " \\25B2"; color: #666; }
.vecbook-table th[data-sort="desc"]::after { content: " \\25BC"; color: #666; }
.vecbook-table td { padding: 2px 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 420px; }
.vecbook-table td.vecbook-num { text-align: right; font-variant-numeric: tabular-nums; }
.vecbook-table tbody tr { cursor: pointer; }
.vecbook-table tbody tr:hover { background: #eef4ff; }
.vecbook-table tbody tr.vecbook-selected { background: #fff3c4; }
"""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_rows(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Records -> what the view draws: per row its id, the cells' text, hover texts (``""``: the cell's own
    text, not sent twice), which cells are numbers."""
    out = []
    for record in records:
        texts = [_table.format_value(record.get(c)) for c in columns]
        cells = [_cut(t, MAX_CELL) for t in texts]
        out.append({
            "id": str(record.get("id", "")),
            "cells": cells,
            "titles": ["" if cell == t else _cut(t, MAX_TITLE) for cell, t in zip(cells, texts)],
            "num": [_table.is_number(record.get(c)) for c in columns],
        })
    return out


def _widget_class():
    anywidget = _deps.require("anywidget", "vecbook's clickable tables")
    traitlets = _deps.require("traitlets", "vecbook's clickable tables")

    class _Table(anywidget.AnyWidget):
        _esm = traitlets.Unicode(_ESM).tag(sync=True)
        _css = traitlets.Unicode(_CSS).tag(sync=True)
        columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
        rows = traitlets.List().tag(sync=True)
        selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
        sort_by = traitlets.Unicode("").tag(sync=True)
        ascending = traitlets.Bool(True).tag(sync=True)
        empty = traitlets.Unicode("No rows.").tag(sync=True)
        css_class = traitlets.Unicode("").tag(sync=True)
        note = traitlets.Unicode("").tag(sync=True)

    return _Table


class TableView:
    """A clickable, sortable table. ``on_click(id, toggle)`` and ``on_sort(column)`` get the user's clicks;
    ``show(...)`` redraws. ``widget`` is the anywidget (its element gets ``box_class``)."""

    def __init__(self, css_class: str, box_class: str = "", on_click: Callable[[str, bool], Any] | None = None,
                 on_sort: Callable[[str], Any] | None = None, empty: str = "No rows."):
        self.widget = _widget_class()(css_class=css_class, empty=empty)
        if box_class:
            self.widget.add_class(box_class)
        self.on_click, self.on_sort = on_click, on_sort
        self.widget.on_msg(self._message)

    def _message(self, _widget, content: dict, _buffers) -> None:
        if content.get("event") == "click" and self.on_click is not None:
            self.on_click(str(content.get("id", "")), bool(content.get("toggle")))
        elif content.get("event") == "sort" and self.on_sort is not None:
            self.on_sort(str(content.get("column", "")))

    def click(self, node_id: str, toggle: bool = False) -> None:
        """What a click on the row ``node_id`` sends (for tests and scripts)."""
        self._message(self.widget, {"event": "click", "id": node_id, "toggle": toggle}, [])

    def click_header(self, column: str) -> None:
        """What a click on a column's header sends."""
        self._message(self.widget, {"event": "sort", "column": column}, [])

    def show(self, records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, selected: Iterable[str] = (),
             sort_by: str | None = None, ascending: bool = True, empty: str | None = None, more: str = "") -> None:
        """Draw ``records`` (already in order) with these columns (default: every key, in first-seen order).

        Past :data:`MAX_ROWS` rows a note says how many are not shown (``more``: where to find them all).
        """
        if columns is None:
            columns = list(dict.fromkeys(k for row in records for k in row))
        total = len(records)
        records = records[:MAX_ROWS]
        w = self.widget
        with w.hold_sync():
            if empty is not None:
                w.empty = empty
            w.columns = list(columns)
            w.rows = table_rows(records, columns)
            w.selected = [str(i) for i in selected]
            w.sort_by, w.ascending = sort_by or "", bool(ascending)
            w.note = f"showing the first {MAX_ROWS:,} of {total:,} rows{f'; {more}' if more else ''}" if total > MAX_ROWS else ""

    @property
    def ids(self) -> list[str]:
        """The ids of the rows shown, in order."""
        return [row["id"] for row in self.widget.rows]

    def column(self, name: str) -> list[str]:
        """The texts shown in one column, top to bottom."""
        i = self.widget.columns.index(name)
        return [row["cells"][i] for row in self.widget.rows]
