"""SearchPanel: query, top_k and a filter builder fed by the workspace's metadata; results with scores."""

from __future__ import annotations

import html
from typing import Any

from ..errors import FilterError
from ..stores.fusion import MODES, check_mode
from . import _deps, _table
from .filter_builder import MULTI, NO_VALUE, OPS, FilterClause, ops_for, parse_value
from .filter_text import placeholder
from .introspect import FieldInfo
from .search_state import SearchState
from .table_view import TableView

__all__ = ["SearchPanel", "FilterBuilderView"]


class _Widget:
    """Displays as its ``widget`` (an ipywidgets box)."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _text_placeholder(state: SearchState) -> str:
    return placeholder(state.schema) if state.schema_loaded else "or type a filter (the workspace's fields are being read)"


def _placeholder(info: FieldInfo | None, op: str, end: str = "") -> str:
    if info is None:
        return "value"
    if info.is_ordered and info.min is not None:
        if end == "lo" or op in ("gte", "gt"):
            return f"from {info.min}"
        if end == "hi" or op in ("lte", "lt"):
            return f"to {info.max}"
        return f"{info.min} … {info.max}"
    return {"boolean": "true / false"}.get(info.kind, "value")


class _ClauseRow:
    """One clause's widgets: field, operator, value editor(s), remove button."""

    def __init__(self, view: FilterBuilderView, clause: FilterClause):
        w = _deps.widgets()
        self.view, self.clause = view, clause
        # The dropdown's values are the fields' labels (unique: a key holding a dot reads "file.name").
        self.by_label = {info.name: info for info in view.builder.fields.values()}
        current = view.builder.fields.get(clause.field) if not isinstance(clause.field, str) else None
        self.field = w.Dropdown(options=[("field…", "")] + [(label, label) for label in self.by_label],
                                value=current.name if current is not None else "", layout=w.Layout(width="150px"))
        self.op = w.Dropdown(layout=w.Layout(width="110px"))
        self.value_box = w.HBox()
        self.remove = w.Button(description="✕", tooltip="remove this condition", layout=w.Layout(width="32px"))
        self.box = w.HBox([self.field, self.op, self.value_box, self.remove])
        self.box.add_class("vecbook-clause")
        self.editors: list[Any] = []
        self._refreshing = False
        self._set_ops()
        self.field.observe(self._field_changed, "value")
        self.op.observe(self._op_changed, "value")
        self.remove.on_click(lambda _: view.remove_row(self))

    @property
    def info(self) -> FieldInfo | None:
        return self.by_label.get(self.field.value)

    def refresh_fields(self) -> None:
        """Offer the builder's current fields (a schema that arrived or changed after this row was added)."""
        self.by_label = {info.name: info for info in self.view.builder.fields.values()}
        chosen = self.field.value if self.field.value in self.by_label else ""
        self._refreshing = True  # new options are not a new choice: the clause keeps its field and value
        try:
            self.field.options = [("field…", "")] + [(label, label) for label in self.by_label]
            self.field.value = chosen
        finally:
            self._refreshing = False
        if chosen == "" and self.clause.field:  # its field is gone from the workspace
            self._field_changed(None)

    def _set_ops(self) -> None:
        ops = ops_for(self.info)
        op = self.clause.op if self.clause.op in ops else ops[0]
        self.op.options = [(OPS[o], o) for o in ops]
        self.op.value = op
        self.clause.op = op
        self._make_editors()

    def _field_changed(self, change) -> None:
        if self._refreshing:
            return
        info = self.info
        self.clause.field = info.path if info is not None else ""
        self.clause.value = None
        self.clause.op = ops_for(self.info)[0]  # a new field starts from its most useful operator
        self._set_ops()
        self.view.changed()

    def _op_changed(self, change) -> None:
        if change["new"] is None:
            return
        self.clause.op = change["new"]
        self.clause.value = None
        self._make_editors()
        self.view.changed()

    def _make_editors(self) -> None:
        w = _deps.widgets()
        info, op = self.info, self.op.value
        values = info.values if info is not None else None
        text = lambda end="": w.Text(placeholder=_placeholder(info, op, end), continuous_update=False, layout=w.Layout(width="120px"))
        if op in NO_VALUE or not self.field.value:
            editors = []
        elif op == "between":
            editors = [text("lo"), text("hi")]
        elif op in MULTI and values:
            editors = [w.SelectMultiple(options=[(str(v), v) for v in values], rows=min(5, len(values)), layout=w.Layout(width="180px"))]
        elif op in MULTI:
            editors = [w.Text(placeholder="a, b, c", continuous_update=False, layout=w.Layout(width="180px"))]
        elif op in ("eq", "ne") and (values or (info is not None and info.kind == "boolean")):
            choices = values if values else [True, False]
            editors = [w.Dropdown(options=[("value…", None)] + [(str(v), v) for v in choices], layout=w.Layout(width="160px"))]
        else:
            editors = [text()]
        for editor in editors:
            editor.add_class("vecbook-filter-value")
            editor.observe(lambda _: self.view.changed(), "value")
        self.editors = editors
        self.value_box.children = editors

    def read(self) -> None:
        """Editors -> clause value (typed). Raises FilterError on text that does not parse."""
        info, op, eds = self.info, self.op.value, self.editors
        if not eds:
            self.clause.value = None
        elif op == "between":
            self.clause.value = (parse_value(eds[0].value, info), parse_value(eds[1].value, info))
        elif op in MULTI:
            raw = eds[0].value
            self.clause.value = list(raw) if isinstance(raw, tuple) else [parse_value(p, info) for p in raw.split(",") if p.strip()]
        else:
            self.clause.value = parse_value(eds[0].value, info)

    def set_value(self, value: Any) -> None:
        """Python -> editors (for tests and for ``SearchPanel.add_condition``)."""
        eds, op = self.editors, self.op.value
        if op == "between":
            lo, hi = value
            eds[0].value, eds[1].value = ("" if lo is None else str(lo)), ("" if hi is None else str(hi))
        elif op in MULTI:
            eds[0].value = tuple(value) if hasattr(eds[0], "rows") else ", ".join(map(str, value))
        elif eds:
            eds[0].value = value if hasattr(eds[0], "options") else ("" if value is None else str(value))


class FilterBuilderView(_Widget):
    """The builder's widgets over ``state.builder``; shows the emitted filter as a line of Python."""

    def __init__(self, state: SearchState, on_change=None):
        w = _deps.widgets()
        self.state, self.builder = state, state.builder
        self.on_change = on_change
        self.rows: list[_ClauseRow] = []
        self.combine = w.Dropdown(options=[("match all", "all"), ("match any", "any")], value=self.builder.combine,
                                  layout=w.Layout(width="110px"))
        self.add_button = w.Button(description="+ condition", layout=w.Layout(width="110px"))
        self.add_button.add_class("vecbook-add-condition")
        self.schema_note = w.HTML()
        self.rows_box = w.VBox()
        self.text = w.Text(placeholder=_text_placeholder(state), continuous_update=False, layout=w.Layout(width="98%"))
        self.text.add_class("vecbook-filter-text")
        self.code = w.HTML()
        self.code.add_class("vecbook-filter-code")
        self.error = ""
        self.widget = w.VBox([w.HBox([w.HTML("<b>Filter</b>"), self.combine, self.add_button, self.schema_note]),
                              self.rows_box, self.text, self.code])
        self.combine.observe(lambda _: self.changed(), "value")
        self.text.observe(lambda _: self.changed(), "value")
        self.add_button.on_click(lambda _: self.add_row())
        self.refresh_schema()

    def refresh_schema(self) -> None:
        self.builder = self.state.builder
        self.schema_note.value = f"<span style='color:#666;font-size:11px'>{html.escape(self.state.schema_note())}</span>"
        self.text.placeholder = _text_placeholder(self.state)
        self.rows = [r for r in self.rows if r.clause in self.builder.clauses]
        for row in self.rows:
            row.refresh_fields()
        self.rows_box.children = [r.box for r in self.rows]
        self.changed()

    def add_row(self, field: str | tuple[str, ...] = "", op: str | None = None, value: Any = None) -> _ClauseRow:
        """Add a clause and its widgets; ``field`` as ``FilterBuilder.add`` takes it."""
        clause = self.builder.add(field, op)
        row = _ClauseRow(self, clause)
        self.rows.append(row)
        self.rows_box.children = [r.box for r in self.rows]
        if value is not None:
            row.set_value(value)
        self.changed()
        return row

    def remove_row(self, row: _ClauseRow) -> None:
        i = self.rows.index(row)
        self.rows.pop(i)
        self.builder.remove(i)
        self.rows_box.children = [r.box for r in self.rows]
        self.changed()

    def changed(self, notify: bool = True) -> None:
        """Re-read every editor, update the builder and the code line (and tell ``on_change`` if ``notify``)."""
        self.builder.combine = self.combine.value
        self.state.filter_text = self.text.value
        self.error = ""
        for row in self.rows:
            try:
                row.read()
            except FilterError as exc:
                row.clause.value = None
                self.error = str(exc)
        code = self.state.filter_code
        if self.error:
            code = f"# invalid value: {self.error}"
        self.code.value = f"<code style='font-size:12px;white-space:pre-wrap'>{html.escape(code)}</code>"
        if notify and self.on_change is not None:
            self.on_change()


class SearchPanel(_Widget):
    """Search one workspace from a notebook: query text, ``top_k``, a filter builder, results with scores.

    ``panel.state`` holds everything as plain data; ``panel.results`` is the last
    results as a DataFrame; ``panel.filter_dict`` the filter the builder emits.
    Errors (a bad filter, a backend that is down) appear in the panel. Editing the
    filter after a search runs it again, so the results always match the filter
    shown. A click on a result row emits the state's ``"focus"``; a click on a
    header sorts the results.
    """

    def __init__(self, store, workspace_id: str, top_k: int = 10, defer_schema: bool = False):
        w = _deps.widgets()
        self.state = SearchState(store, workspace_id, top_k=top_k, defer_schema=defer_schema)
        self.query_box = w.Text(placeholder="query text (empty: list nodes matching the filter)", continuous_update=False,
                                layout=w.Layout(width="38%", min_width="160px"))
        self.query_box.add_class("vecbook-query")
        self.top_k_box = w.BoundedIntText(value=top_k, min=1, max=10_000, description="top_k", layout=w.Layout(width="140px"),
                                          style={"description_width": "40px"})
        self.mode_box = w.Dropdown(options=list(MODES), value="vector", description="mode", layout=w.Layout(width="170px"),
                                   style={"description_width": "40px"},
                                   tooltip="vector: by meaning; keyword: BM25 over the text; hybrid: both, fused by rank")
        self.mode_box.add_class("vecbook-search-mode")
        self.search_button = w.Button(description="Search", button_style="primary", layout=w.Layout(width="90px"))
        self.search_button.add_class("vecbook-search-button")
        self.clear_button = w.Button(description="Clear", tooltip="clear the query and the results", layout=w.Layout(width="70px"))
        self.clear_button.add_class("vecbook-clear-search")
        self.filters = FilterBuilderView(self.state)
        self.status_html = w.HTML()
        self.status_html.add_class("vecbook-search-status")
        self.error_html = w.HTML()
        self.error_html.add_class("vecbook-search-error")
        self.table = TableView("vecbook-results", box_class="vecbook-results-box", empty="No search yet.",
                               on_click=lambda node_id, _toggle: self.state.focus(node_id), on_sort=self.state.sort)
        self.widget = w.VBox([
            w.HTML(f"<b>Search</b> <code>{html.escape(workspace_id)}</code>"),
            w.HBox([self.query_box, self.top_k_box, self.mode_box, self.search_button, self.clear_button]),
            self.filters.widget, self.status_html, self.error_html, self.table.widget,
        ])
        self.widget.add_class("vecbook-search-panel")
        self._syncing = False
        self.filters.on_change = self._filter_changed
        self.search_button.on_click(lambda _: self.run())
        self.clear_button.on_click(lambda _: self.clear())
        self.query_box.observe(lambda _: None if self._syncing else self.run(), "value")
        self.mode_box.observe(lambda _: None if self._syncing or not self.state.query.strip() else self.run(), "value")
        for event in ("results", "sorted", "focus"):
            self.state.on(event, lambda *_: self._render())
        self.state.on("schema", self._schema_arrived)
        self._render()

    def load_schema_later(self) -> None:
        """Read the workspace's schema in a thread; the filter builder and text box fill in when it arrives."""
        self.state.load_schema_later()

    def _schema_arrived(self) -> None:
        self.filters.refresh_schema()
        self._render()

    def _filter_changed(self) -> None:
        if self.filters.error:
            if self.state.has_run:  # the results of the old filter must not stay shown
                self.state.fail(f"FilterError: {self.filters.error}")
            else:
                self.error_html.value = _table.message_html(self.filters.error, "error")
            return
        self.error_html.value = ""
        self.state.filter_changed()

    def add_condition(self, field: str | tuple[str, ...], op: str | None = None, value: Any = None):
        """Add a filter condition as a user would (returns its row of widgets).

        ``field`` is a field as the dropdown shows it (``author.name``, ``"file.name"``), its
        filter key, its raw metadata key or its path (``("file.name",)``). Waits for a schema
        still being read (the field's type decides the operators).
        """
        self.state.wait_schema()
        return self.filters.add_row(field, op, value)

    @property
    def filter_dict(self) -> dict | None:
        """The filter the next search uses (raises FilterError if it is malformed)."""
        return self.state.current_filter()

    def run(self) -> list:
        """Search with what the widgets show; returns the result nodes."""
        self.state.query = self.query_box.value
        self.state.top_k = int(self.top_k_box.value)
        self.state.mode = self.mode_box.value
        self.filters.changed(notify=False)
        if self.filters.error:
            self.state.fail(f"FilterError: {self.filters.error}")
            return []
        return self.state.run()

    def search(self, query: str = "", top_k: int | None = None, mode: str | None = None) -> list:
        """Type ``query`` (and ``top_k``, and pick the ``mode``: vector, keyword or hybrid) and run the search."""
        if top_k is not None:
            self.top_k_box.value = top_k
        if mode is not None:
            self._syncing = True
            try:
                self.mode_box.value = check_mode(mode)
            finally:
                self._syncing = False
        if self.query_box.value == query:
            return self.run()
        self.query_box.value = query  # the observer runs the search
        return self.state.results

    def clear(self) -> None:
        """Clear the query and the results (the filter stays); a linked map drops its highlight."""
        self._syncing = True
        try:
            self.query_box.value = ""
        finally:
            self._syncing = False
        self.state.clear()

    @property
    def results(self):
        """The last results as a DataFrame (``#``, id, score, content, metadata), best first."""
        return self.state.results_frame()

    def _render(self) -> None:
        s = self.state
        self.status_html.value = _table.message_html(s.status)
        self.error_html.value = _table.message_html(s.error or "", "error")
        empty = ("No results (see the error above)." if s.error else "No search yet." if not s.has_run else "No results.")
        records = s.result_records()
        columns = list(dict.fromkeys(k for row in records for k in row))
        self.table.show(records, columns, selected=[s.focused] if s.focused else (), sort_by=s.sort_by,
                        ascending=s.ascending, empty=empty, more="all of them in panel.results")
