"""explore(store): the browser, the search panel and the map, linked."""

from __future__ import annotations

import html
from typing import Any

from . import _deps, _table
from .browser import WorkspaceBrowser
from .map import EmbeddingMap
from .map_sample import DEFAULT_MAX_POINTS, PointsRead
from .search import SearchPanel, _Widget
from .selection_actions import SelectionActions, SelectionActionsView
from .state import describe_error
from .tagging import selection_filter

__all__ = ["Explorer", "explore"]


class Explorer(_Widget):
    """Search panel and map side by side, the map's selection as a table, the workspace browser below.

    Links: a search highlights its results on the map (the rest dimmed, the
    query placed among them, the points its filter excludes drawn faint); a
    lasso selection on the map fills the selection table; a click on the map
    lists the point's neighbours and opens the node in the browser; a
    ``"focus"`` event (node id) from the search panel or the browser, sent when
    a user clicks a table row, marks that point and centres the map on it; a
    delete or a copy in the browser that writes the explored workspace (a copy
    *into* it included) reloads the map and the filter fields. Under the
    selection table, the selection can be tagged in the store (the new field is
    then offered by the filter box and the colour menu) or turned into a
    ``filter_dict`` to paste into code.
    """

    def __init__(self, store, workspace_id: str | None = None, top_k: int = 10, **map_kwargs: Any):
        if workspace_id is None:
            names = store.list_workspaces()
            if not names:
                raise ValueError("the store has no workspace to explore; create one and insert nodes first")
            workspace_id = names[0]
        # First: the map's read runs while the widget libraries are imported.
        points = PointsRead(store, workspace_id, map_kwargs.get("max_points", DEFAULT_MAX_POINTS))
        w = _deps.widgets()
        self.store, self.workspace_id = store, workspace_id
        self.search = SearchPanel(store, workspace_id, top_k=top_k, defer_schema=True)  # read once the map is built
        self.map = EmbeddingMap(store, workspace_id, show_selection_table=False, defer_fields=True, points=points, **map_kwargs)
        self.browser = WorkspaceBrowser(store, workspace_id, defer_page=True)  # read when its section opens
        self.selection_html = w.HTML()
        self.selection_html.add_class("vecbook-explorer-selection")
        self.actions = SelectionActionsView(SelectionActions(store, workspace_id))
        self.search.widget.layout = w.Layout(width="46%", min_width="380px")
        self.map.widget.layout = w.Layout(width="54%", min_width="380px")
        browser = w.Accordion(children=[self.browser.widget], titles=("Workspace browser",))
        browser.observe(lambda change: change["new"] is not None and self.browser.state.load_page(), "selected_index")
        self.widget = w.VBox([
            w.HTML(f"<h3 style='margin:4px 0'>vecbook explorer · <code>{html.escape(workspace_id)}</code></h3>"),
            w.HBox([self.search.widget, self.map.widget], layout=w.Layout(width="100%", flex_flow="row wrap")),
            self.selection_html, self.actions.widget, browser,
        ])
        self.widget.add_class("vecbook-explorer")
        self.search.state.on("results", self._search_results)
        self.search.state.on("focus", self.map.focus)
        self.browser.state.on("focus", self.map.focus)
        self.map.state.on("neighbours", self._map_clicked)
        self.map.state.on("selection", self._show_selection)
        self.browser.state.on("modified", self._workspace_modified)
        self.actions.state.on("tagged", lambda workspace_id, _field: self._workspace_modified(workspace_id))
        self.search.state.on("schema", self._fields_to_map)
        self._show_selection()
        self.search.load_schema_later()

    @property
    def selection(self):
        """The map's selection as a DataFrame."""
        return self.map.selection

    @property
    def clusters(self):
        """The map's clusters as a DataFrame (cluster, label, terms, size, x, y), for the layout shown."""
        return self.map.clusters

    def tag_selection(self, label_field: str, value: Any) -> int:
        """Write ``metadata[label_field] = value`` on the selected nodes (the "Tag selection" button); how many changed.

        The map and the filter fields reload, so the tag is at once a colour and a filter field."""
        changed = self.actions.state.tag(label_field, value)
        if changed is None:
            raise self.actions.state.last_exception
        return changed

    def selection_filter(self, key_field: str | None = None) -> dict:
        """A portable ``filter_dict`` selecting exactly the selected nodes (FilterError when no field singles them out)."""
        return selection_filter(self.store, self.workspace_id, self.map.state.selected_ids, key_field=key_field)

    def close(self) -> None:
        """Stop any UMAP computing for the map (its process is terminated) and close the widgets."""
        self.map.close()
        self.widget.close()

    def _search_results(self, results) -> None:
        self.map.highlight(results, self.search.state.query_vector if results else None)
        try:
            self.map.show_filter(self.search.state.current_filter() if results else None)
        except Exception:  # a malformed filter: the search panel shows the error
            self.map.show_filter(None)

    def _map_clicked(self) -> None:
        clicked = self.map.state.clicked
        if clicked is not None and self.browser.state.workspace_id == self.workspace_id:
            self.browser.state.show(clicked)

    def _show_selection(self) -> None:
        s = self.map.state
        self.actions.state.set_ids(s.selected_ids)
        if not s.selected:
            self.selection_html.value = "<div style='color:#666;font-size:12px'>Select points on the map (the lasso button of the map's toolbar) to list them here.</div>"
            return
        head = f"<b>Selected on the map: {len(s.selected):,} point(s)</b> <span style='color:#666'>(<code>explorer.selection</code> as a DataFrame)</span>"
        self.selection_html.value = head + _table.html_table(s.selection_records(limit=500), "vecbook-selection")

    def _workspace_modified(self, workspace_id: str) -> None:
        if workspace_id == self.workspace_id:
            self.map.reload()  # keeps the selection (a tag is written on it), drawn with the new plot
            self._show_selection()  # its table, with the new values
            self.search.state.reload_schema()
            self.search.filters.refresh_schema()
            self._fields_to_map()

    def _fields_to_map(self) -> None:
        """The map's colour menu from the search panel's schema (one introspection for both); if it
        failed, no fields and the store's error under the map (the filter section shows it too)."""
        s = self.search.state
        if s.schema_loaded:
            self.map.state.set_fields(s.schema.fields.keys())
        elif s.schema_error is not None:
            self.map.state.set_fields([], error=f"no fields to colour by: {describe_error(s.schema_error)}")


def explore(store, workspace_id: str | None = None, top_k: int = 10, **map_kwargs: Any) -> Explorer:
    """Open the linked explorer on a workspace (the first one if not given); display the result in a notebook."""
    return Explorer(store, workspace_id, top_k=top_k, **map_kwargs)
