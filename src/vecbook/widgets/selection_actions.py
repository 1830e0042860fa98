"""What to do with a selection: tag it in the store, or get a filter for it to paste into code.

``SelectionActions`` is the plain-Python state (ids come from whoever selects:
the map's lasso, the browser's clicks); ``SelectionActionsView`` its widgets, a
"Tag selection" button and a "Selection as filter" button. The explorer wires them:

    actions = SelectionActionsView(SelectionActions(store, workspace_id))
    map.state.on("selection", lambda *_: actions.state.set_ids(selected_ids))
    actions.state.on("tagged", lambda workspace_id, field: reload the map and the filter fields)
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from . import _deps, _table
from ._events import Observable, describe_error
from .tagging import selection_code, tag_selection

__all__ = ["SelectionActions", "SelectionActionsView", "parse_tag_value"]


def parse_tag_value(text: str) -> Any:
    """A tag typed in a box: ``true``/``false``, a number, a JSON string (``"42"`` stays text), else the text itself."""
    text = (text or "").strip()
    if text in ("true", "false"):
        return text == "true"
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else text


class SelectionActions(Observable):
    """Tag the selected nodes (``tag``) or write a filter for them (``filter_code``); errors kept in ``error``.

    Event: ``"tagged"`` (workspace id, field) after a tag was written, so views reload.
    """

    def __init__(self, store, workspace_id: str, ids: Iterable[str] = ()):
        self.store, self.workspace_id = store, workspace_id
        self.ids: list[str] = list(ids)
        self.message = ""
        self.code = ""
        self.error: str | None = None
        self.last_exception: BaseException | None = None

    def set_ids(self, ids: Iterable[str]) -> None:
        """The selection changed: remember its ids, forget the old code (the same ids again change nothing)."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        if ids == self.ids:
            return
        self.ids = ids
        self.code, self.message, self.error = "", "", None
        self._emit("changed")

    def tag(self, label_field: str, value: Any) -> int | None:
        """Set ``metadata[label_field] = value`` on the selected nodes; the number changed, or None on error."""
        self.error, self.message, self.last_exception = None, "", None
        try:
            changed = tag_selection(self.store, self.workspace_id, self.ids, label_field, value)
        except Exception as exc:  # shown in the panel; the widget keeps working
            self.error, self.last_exception = describe_error(exc), exc
            self._emit("changed")
            return None
        self.message = (f"tagged {len(self.ids):,} node(s) with {label_field}={value!r} ({changed:,} changed); "
                        f"filter on it with {{{label_field!r}: {value!r}}}")
        self._emit("changed")
        self._emit("tagged", self.workspace_id, label_field)
        return changed

    def filter_code(self, key_field: str | None = None) -> str:
        """A line of Python selecting the selected nodes (a ``filter_dict`` when a field singles them out)."""
        self.error = None
        if not self.ids:
            self.code, self.error = "", "select nodes first"
        else:
            try:
                self.code = selection_code(self.store, self.workspace_id, self.ids, key_field=key_field)
            except Exception as exc:
                self.code, self.error = "", describe_error(exc)
        self._emit("changed")
        return self.code


class SelectionActionsView:
    """A field and a value box with "Tag selection", and "Selection as filter" showing a line to paste."""

    def __init__(self, state: SelectionActions):
        w = _deps.widgets()
        self.state = state
        self.field_box = w.Text(value="label", placeholder="field", layout=w.Layout(width="120px"))
        self.value_box = w.Text(placeholder="value, e.g. spam", layout=w.Layout(width="140px"))
        self.tag_button = w.Button(description="Tag selection", tooltip="write field=value into the selected nodes' metadata",
                                   layout=w.Layout(width="115px"))
        self.tag_button.add_class("vecbook-tag-selection")
        self.code_button = w.Button(description="Selection as filter", tooltip="a filter_dict selecting these nodes",
                                    layout=w.Layout(width="140px"))
        self.code_button.add_class("vecbook-selection-filter")
        self.output = w.HTML()
        self.widget = w.VBox([w.HBox([self.field_box, self.value_box, self.tag_button, self.code_button]), self.output])
        self.widget.add_class("vecbook-selection-actions")
        self.tag_button.on_click(lambda _: state.tag(self.field_box.value.strip(), parse_tag_value(self.value_box.value)))
        self.code_button.on_click(lambda _: state.filter_code())
        state.on("changed", self._render)
        self._render()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _render(self) -> None:
        s = self.state
        self.tag_button.disabled = self.code_button.disabled = not s.ids
        parts = []
        if s.error:
            parts.append(_table.message_html(s.error, "error"))
        elif s.message:
            parts.append(_table.message_html(s.message))
        if s.code:
            parts.append(f"<code class='vecbook-selection-code' style='font-size:12px;white-space:pre-wrap'>{html.escape(s.code)}</code>")
        self.output.value = "".join(parts)
