"""WorkspaceBrowser: workspaces with counts, paged node tables, one node in full, guarded actions."""

from __future__ import annotations

import html

from . import _deps, _table
from .search import _Widget
from .state import BrowserState
from .table_view import TableView

__all__ = ["WorkspaceBrowser"]


class WorkspaceBrowser(_Widget):
    """Browse a store from a notebook.

    Lists workspaces with their node counts; pages through a workspace's nodes
    (only up to the page shown is read); a click on a row selects it and shows
    it in full (ctrl/shift-click adds to the selection), a click on a header
    sorts the page; deletes the selected nodes, copies or dumps the workspace
    after asking to confirm.
    ``browser.state`` is the plain-Python state; ``to_dataframe()`` the whole workspace.
    ``defer_page=True``: the first page is read by ``state.load_page()`` (the explorer calls it
    when its browser section is first opened).
    """

    def __init__(self, store, workspace_id: str | None = None, page_size: int = 20, defer_page: bool = False):
        w = _deps.widgets()
        self.state = BrowserState(store, workspace_id, page_size=page_size, defer_page=defer_page)
        self.workspace_box = w.Dropdown(description="workspace", layout=w.Layout(width="320px"))
        self.workspace_box.add_class("vecbook-workspace")
        self.refresh_button = w.Button(description="↻", tooltip="reload workspaces and counts", layout=w.Layout(width="40px"))
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="80px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="80px"))
        self.page_label = w.HTML()
        self.table = TableView("vecbook-page", box_class="vecbook-browser-table", on_click=self.state.click,
                               on_sort=self.state.sort)
        self.selection_label = w.HTML()
        self.delete_button = w.Button(description="Delete selected…", button_style="danger")
        self.detail_html = w.HTML()
        self.copy_to = w.Text(placeholder="destination workspace", layout=w.Layout(width="200px"))
        self.copy_button = w.Button(description="Copy…")
        self.dump_to = w.Text(placeholder=f"dump directory (default {getattr(store, 'store_dir', None) or '.'})", layout=w.Layout(width="300px"))
        self.dump_button = w.Button(description="Dump…")
        self.confirm_html = w.HTML()
        self.confirm_button = w.Button(description="Confirm", button_style="danger")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm_box = w.HBox([self.confirm_html, self.confirm_button, self.cancel_button], layout=w.Layout(display="none"))
        self.confirm_box.add_class("vecbook-confirm")
        self.message_html = w.HTML()
        self.widget = w.VBox([
            w.HBox([self.workspace_box, self.refresh_button]),
            w.HBox([self.prev_button, self.page_label, self.next_button]),
            self.table.widget,
            w.HBox([self.selection_label, self.delete_button]),
            self.detail_html,
            w.HBox([self.copy_to, self.copy_button, self.dump_to, self.dump_button]),
            self.confirm_box, self.message_html,
        ])
        self.widget.add_class("vecbook-browser")
        self._syncing = False
        self.workspace_box.observe(self._workspace_changed, "value")
        self.refresh_button.on_click(lambda _: self.state.refresh())
        self.prev_button.on_click(lambda _: self.state.prev_page())
        self.next_button.on_click(lambda _: self.state.next_page())
        self.delete_button.on_click(lambda _: self.state.ask_delete())
        self.copy_button.on_click(lambda _: self.state.ask_copy(self.copy_to.value))
        self.dump_button.on_click(lambda _: self.state.ask_dump(self.dump_to.value.strip()))
        self.confirm_button.on_click(lambda _: self.state.confirm())
        self.cancel_button.on_click(lambda _: self.state.cancel())
        self.state.on("changed", self._render)
        self._render()

    def _workspace_changed(self, change) -> None:
        if not self._syncing and change["new"] and change["new"] != self.state.workspace_id:
            self.state.open(change["new"])

    def to_dataframe(self, workspace_id: str | None = None, limit: int | None = None):
        """The workspace shown (or another) as a DataFrame: id, content, flattened metadata."""
        return self.state.to_dataframe(workspace_id, limit)

    def _render(self) -> None:
        s = self.state
        self._syncing = True
        try:
            self.workspace_box.options = [(f"{ws} ({n:,})", ws) for ws, n in s.workspaces]
            self.workspace_box.value = s.workspace_id if s.workspace_id in dict(s.workspaces) else None
            first = s.page * s.page_size
            self.page_label.value = (f"<span style='padding:0 8px'>page {s.page + 1} of {s.n_pages} · nodes {first + 1 if s.rows else 0}–"
                                     f"{first + len(s.rows)} of {s.total:,}"
                                     f"{f' · this page sorted by {html.escape(s.sort_by)}' if s.sort_by else ''}</span>")
            self.prev_button.disabled = s.page <= 0
            self.next_button.disabled = s.page >= s.n_pages - 1
            self.table.show(s.page_records(), selected=s.selected, sort_by=s.sort_by, ascending=s.ascending,
                            empty=("No workspace." if not s.workspace_id else "This workspace is empty." if s.page_loaded
                                   else "Reading the first page…"))
            n = len(s.selected)
            self.selection_label.value = (f"<span style='font-size:12px;padding:0 8px'>{n} selected</span>" if n else
                                          "<span style='color:#666;font-size:12px;padding:0 8px'>click a row to select it "
                                          "(ctrl/shift-click for more)</span>")
            self.delete_button.disabled = not n
            self.detail_html.value = _table.node_detail_html(s.detail) if s.detail is not None else ""
            self.confirm_html.value = f"<b style='color:#b00020'>{html.escape(s.pending.description)}</b>" if s.pending else ""
            self.confirm_box.layout.display = "flex" if s.pending else "none"
            if s.error:
                self.message_html.value = _table.message_html(s.error, "error")
            else:
                self.message_html.value = _table.message_html(s.message)
        finally:
            self._syncing = False
