"""Plain-Python state of the workspace browser (and, re-exported, of the search panel).

The widgets in ``browser.py`` and ``search.py`` are thin views over these
objects: tests (and scripts) drive the state directly, without a browser or
even ipywidgets. Every store call goes through the public store API, and every
error a store raises is caught and kept in ``error``, so a view can show it and
keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..node import VectorNode
from . import _table
from ._events import Observable, describe_error
from .search_state import SearchState

__all__ = ["Observable", "PendingAction", "BrowserState", "SearchState", "describe_error"]


@dataclass
class PendingAction:
    """A destructive action waiting for the user to confirm it.

    ``writes`` names the workspaces the action changes (a copy writes its
    destination, a delete its workspace, a dump none: it writes a file).
    """

    kind: str  # "delete", "copy", "dump"
    description: str
    run: Callable[[], str]
    writes: tuple[str, ...] = ()


class BrowserState(Observable):
    """Workspaces with their counts, one page of a workspace's nodes, one node in full, guarded actions.

    Events: ``"changed"`` after anything that changes what a view shows;
    ``"modified"`` (workspace id), once per workspace a confirmed action wrote,
    after it succeeded (so a view of that workspace reloads); ``"focus"`` (node id)
    when the user clicks a row (a linked map highlights and centres that point).

    ``sort(column)`` orders the page shown (the store has no order of its own to
    sort the whole workspace by). With ``defer_page=True`` the first page is read by
    :meth:`load_page` (``page_loaded`` False until then): the explorer reads it when
    its browser section is first opened, not before the map is on screen.
    """

    def __init__(self, store, workspace_id: str | None = None, page_size: int = 20, defer_page: bool = False):
        self.store = store
        self.page_size = int(page_size)
        self.workspaces: list[tuple[str, int]] = []
        self.workspace_id: str | None = None
        self.page = 0
        self.total = 0
        self.rows: list[VectorNode] = []
        self.selected: list[str] = []
        self.detail: VectorNode | None = None
        self.pending: PendingAction | None = None
        self.error: str | None = None
        self.message: str = ""
        self.sort_by: str | None = None
        self.ascending = True
        self.page_loaded = False
        self.refresh()
        if workspace_id is None and self.workspaces:
            workspace_id = self.workspaces[0][0]
        if workspace_id is not None and defer_page:
            self.workspace_id = workspace_id
            self.total = dict(self.workspaces).get(workspace_id, 0)
        elif workspace_id is not None:
            self.open(workspace_id)

    def load_page(self) -> None:
        """Read the page shown if it was deferred (``defer_page``); nothing if it is loaded."""
        if not self.page_loaded and self.workspace_id is not None:
            self.goto(self.page)

    @property
    def n_pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def _guard(self, fn: Callable[[], Any]) -> Any:
        self.error = None
        try:
            return fn()
        except Exception as exc:  # shown in the panel; the widget keeps working
            self.error = describe_error(exc)
            return None
        finally:
            self._emit("changed")

    def refresh(self) -> None:
        """Re-read the workspace list and counts (and the current page)."""

        def run():
            names = self.store.list_workspaces()
            self.workspaces = [(ws, self.store.count(ws)) for ws in names]
            if self.workspace_id is not None and self.page_loaded:
                self._load_page(self.page)

        self._guard(run)

    def open(self, workspace_id: str) -> None:
        """Show the first page of a workspace."""
        self.workspace_id = workspace_id
        self.selected, self.detail, self.pending = [], None, None
        self.sort_by, self.ascending = None, True  # another workspace has other columns
        self._guard(lambda: self._load_page(0))

    def _load_page(self, page: int) -> None:
        ws = self.workspace_id
        self.total = self.store.count(ws)
        self.page = min(max(0, int(page)), self.n_pages - 1)
        start = self.page * self.page_size
        self.rows = self.store.read_columns(ws, offset=start, limit=self.page_size).nodes()
        self.page_loaded = True
        present = {n.unique_id for n in self.rows}
        self.selected = [i for i in self.selected if i in present]

    def goto(self, page: int) -> None:
        self._guard(lambda: self._load_page(page))

    def next_page(self) -> None:
        self.goto(self.page + 1)

    def prev_page(self) -> None:
        self.goto(self.page - 1)

    def page_records(self) -> list[dict[str, Any]]:
        """The page's rows as records, in the order ``sort`` chose."""
        return _table.sort_records([_table.node_record(n) for n in self.rows], self.sort_by, self.ascending)

    def page_frame(self):
        """The current page as a DataFrame (id, content, flattened metadata)."""
        return _table.frame(self.page_records())

    def sort(self, column: str | None, ascending: bool | None = None) -> None:
        """Order the page by ``column``; the same column again flips the order; ``None`` restores the store's order."""
        if ascending is None:
            ascending = not self.ascending if column == self.sort_by and column else True
        self.sort_by, self.ascending = column or None, bool(ascending)
        self._emit("changed")

    def select(self, ids: list[str]) -> None:
        self.selected = list(dict.fromkeys(ids))
        self._emit("changed")

    def click(self, node_id: str, toggle: bool = False) -> None:
        """A click on a row: select it (``toggle``: add it to or drop it from the selection, as ctrl-click),
        show it in full and emit ``"focus"`` with its id."""
        if toggle:
            ids = [i for i in self.selected if i != node_id] if node_id in self.selected else self.selected + [node_id]
        else:
            ids = [node_id]
        self.selected = ids
        if node_id in ids:
            self.show(node_id)
            self._emit("focus", node_id)
        else:
            self._emit("changed")

    def show(self, node_id: str) -> VectorNode | None:
        """Fetch one node in full (with its vector) into ``detail``."""

        def run():
            found = self.store.get([node_id], self.workspace_id)
            if not found:
                raise KeyError(f"node {node_id!r} is not in {self.workspace_id!r}")
            self.detail = found[0]
            return self.detail

        return self._guard(run)

    # ---- destructive actions: ask first, then confirm() or cancel() ------------------------

    def _ask(self, action: PendingAction) -> PendingAction:
        self.pending = action
        self.error = None
        self._emit("changed")
        return action

    def ask_delete(self, ids: list[str] | None = None) -> PendingAction | None:
        ids = list(ids if ids is not None else self.selected)
        ws = self.workspace_id
        if not ids or ws is None:
            self.error = "select the nodes to delete first"
            self._emit("changed")
            return None

        def run() -> str:
            self.store.delete(ids, ws)
            self.selected = []
            self.detail = None if self.detail and self.detail.unique_id in ids else self.detail
            return f"deleted {len(ids)} node(s) from {ws!r}"

        return self._ask(PendingAction("delete", f"Delete {len(ids)} node(s) from {ws!r}? This cannot be undone.", run, writes=(ws,)))

    def ask_copy(self, dest: str) -> PendingAction | None:
        ws = self.workspace_id
        dest = (dest or "").strip()
        if not dest or ws is None:
            self.error = "type the destination workspace first"
            self._emit("changed")
            return None
        existing = dict(self.workspaces).get(dest)
        note = f" {dest!r} exists with {existing:,} node(s); nodes with the same ids are replaced." if existing is not None else ""

        def run() -> str:
            size = self.store.copy_workspace(ws, dest)["size"]
            return f"copied {size} node(s) from {ws!r} to {dest!r}"

        return self._ask(PendingAction("copy", f"Copy {ws!r} into {dest!r}?{note}", run, writes=(dest,)))

    def ask_dump(self, path: str | Path = "") -> PendingAction | None:
        ws = self.workspace_id
        if ws is None:
            return None
        target = Path(path or getattr(self.store, "store_dir", None) or ".") / f"{ws}.jsonl"
        note = " It exists and will be replaced." if target.exists() else ""

        def run() -> str:
            info = self.store.dump_workspace(ws, path=str(target.parent))
            return f"dumped {info['size']} node(s) to {info.get('path', target)}"

        return self._ask(PendingAction("dump", f"Dump {ws!r} to {target}?{note}", run))

    def confirm(self) -> str | None:
        """Run the pending action; returns its message (or None on error, see ``error``).

        Emits ``"modified"`` for each workspace in ``action.writes`` once the action has
        succeeded (even if re-reading the counts afterwards fails); a failed action emits none.
        """
        action, self.pending = self.pending, None
        if action is None:
            return None
        done = False

        def run():
            nonlocal done
            self.message = action.run()
            done = True
            self.workspaces = [(w, self.store.count(w)) for w in self.store.list_workspaces()]
            self._load_page(self.page)
            return self.message

        result = self._guard(run)
        if done:
            for workspace_id in action.writes:
                self._emit("modified", workspace_id)
        return result

    def cancel(self) -> None:
        self.pending = None
        self._emit("changed")

    def to_dataframe(self, workspace_id: str | None = None, limit: int | None = None):
        """The whole workspace (or ``limit`` nodes) as a DataFrame."""
        ws = workspace_id or self.workspace_id
        return _table.frame([_table.node_record(node) for node in self.store.read_columns(ws, limit=limit).nodes()])

