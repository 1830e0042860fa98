"""EmbeddingMap: a thin view of a MapState on jupyter-scatter (regl-scatterplot, binary transport).

Why jupyter-scatter (measured in docs/explorer.md): the points go to the browser
once, as one float32 buffer (x, y, colour, opacity per point), and the browser
never sends them back; a selection travels as an int32 index buffer, a highlight
as a few annotation shapes, a hover's details as one small message asked for on
demand. Its JavaScript is bundled in the wheel and fetches nothing.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from . import _deps, _table
from .map_colors import NUMERIC_MAP, SCALES, category_colors
from .map_sample import DEFAULT_MAX_POINTS, PointsRead
from .map_state import MapState
from .search import _Widget

__all__ = ["EmbeddingMap"]

HIGHLIGHT = "#e6194b"
NEIGHBOUR = "#111111"
FOCUS = "#ff8c00"
QUERY = "#000000"
BASE_COLOR = "#3b6ea5"
RING_VERTICES = 16
# A one-point selection right after a lasso, on one of this many points (or 0.1 % of the map) nearest an end of
# the lasso, is the click regl-scatterplot adds to a lasso that ends where it began, not a user's.
TRAILING_CLICK_NEAREST = 20
TOOLTIP = "tooltip"  # jupyter-scatter's message type for a hover's details


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _same_rows(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is b or (a is not None and b is not None and np.array_equal(a, b))


def _ring(x: float, y: float, r: float) -> list[tuple[float, float]]:
    a = np.linspace(0, 2 * np.pi, RING_VERTICES + 1)
    return [(float(x + r * np.cos(t)), float(y + r * np.sin(t))) for t in a]


class EmbeddingMap(_Widget):
    """A 2-D map of a workspace's vectors, drawn with WebGL from binary buffers.

    PCA shows at once; "UMAP" computes in a child process with a progress bar, then
    replaces it (projections are cached by a fingerprint of ids + vectors).
    Colour by any metadata field (categories: distinct colours and a legend;
    numbers: linear, log or quantile scale); hover asks the kernel for a point's
    content; a search's hits are ringed while the rest is dimmed (colours kept),
    with the query placed on the layout and linked to them; points a search
    filter excluded are drawn faint. Click a point for its nearest neighbours;
    the toolbar's lasso selects; :attr:`selection` and
    :meth:`select` read and set the selection from Python. Above
    ``max_points`` a stratified sample is drawn, and the status line says so.
    The map holds ids, vectors and the layout; contents and metadata are read
    from the store when shown. ``defer_fields=True`` leaves the colour menu
    empty until ``state.set_fields`` gives it the fields (the explorer passes
    its search panel's schema, read in a thread). ``points``: the workspace's read,
    if the caller started it already (:class:`~vecbook.widgets.map_sample.PointsRead`).
    ``umap_params``: UMAP's ``n_neighbors``, ``min_dist``, ``metric`` and ``n_epochs``, and
    ``sample_size`` (30,000): above it UMAP fits a random sample, which is drawn at once, and
    places every other point beside its ``place_k`` (3) nearest fitted points.
    """

    def __init__(self, store, workspace_id: str, dims: int = 2, color_by: str | None = None, max_points: int = DEFAULT_MAX_POINTS,
                 cache_dir: Any = None, neighbours_k: int = 10, height: int = 480, show_selection_table: bool = True,
                 umap_params: dict | None = None, defer_fields: bool = False, points: PointsRead | None = None):
        points = points or PointsRead(store, workspace_id, max_points)  # the read runs while the libraries below are imported
        w = self._w = _deps.widgets()
        self.defer_fields = defer_fields
        self._extent: tuple[np.ndarray, float] | None = None  # (the coords it was measured on, their extent)
        self._opacity_key: tuple | None = None  # (opacity, rows a filter keeps) drawn last
        self._jscatter = _deps.jscatter()
        self._pd = _deps.pandas()
        # The view draws two dimensions; a 3-D state keeps its third coordinate for code that reads it.
        self.state = MapState(store, workspace_id, dims=dims, max_points=max_points, cache_dir=cache_dir,
                              neighbours_k=neighbours_k, umap_params=umap_params, points=points)
        self.height = height
        self.show_selection_table = show_selection_table
        self.method_box = w.ToggleButtons(options=[("PCA", "pca"), ("UMAP", "umap")], value="pca", style={"button_width": "60px"})
        self.method_box.add_class("vecbook-projection")
        self.color_box = w.Dropdown(description="colour", layout=w.Layout(width="220px"), style={"description_width": "45px"})
        self.color_box.add_class("vecbook-color-by")
        self.scale_box = w.Dropdown(options=list(SCALES), value="linear", layout=w.Layout(width="95px"))
        self.scale_box.add_class("vecbook-color-scale")
        self.clear_button = w.Button(description="clear search", tooltip="remove the search highlight", layout=w.Layout(width="110px"))
        self.clear_button.add_class("vecbook-clear-search")
        self.labels_box = w.Checkbox(value=False, description="cluster labels", indent=False, layout=w.Layout(width="120px"))
        self.labels_box.add_class("vecbook-cluster-labels")
        self.reload_button = w.Button(description="↻", tooltip="re-read the workspace", layout=w.Layout(width="40px"))
        self.progress = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="200px", display="none"))
        self.progress_label = w.HTML()
        self.progress_label.add_class("vecbook-umap-progress")
        self.status_html = w.HTML()
        self.status_html.add_class("vecbook-map-status")
        self.figure_box = w.Box(layout=w.Layout(width="100%", display="block"))
        self.neighbours_html = w.HTML()
        self.neighbours_html.add_class("vecbook-neighbours-box")
        self.selection_html = w.HTML()
        self.selection_html.add_class("vecbook-selection-box")
        children = [w.HBox([self.method_box, self.color_box, self.scale_box, self.clear_button, self.labels_box,
                            self.reload_button]),
                    w.HBox([self.progress, self.progress_label]), self.status_html, self.figure_box, self.neighbours_html]
        if show_selection_table:
            children.append(self.selection_html)
        self.widget = w.VBox(children)
        self.widget.add_class("vecbook-map")
        self._syncing = False
        self._lasso_ends: tuple[np.ndarray, np.ndarray] | None = None
        self.method_box.observe(lambda c: self._syncing or self.state.show(c["new"]), "value")
        self.color_box.observe(lambda c: self._syncing or self.state.set_color(c["new"] or None), "value")
        self.scale_box.observe(lambda c: self._syncing or self.state.set_color(self.state.color_by, c["new"]), "value")
        self.labels_box.observe(lambda c: self._syncing or self.state.show_cluster_labels(c["new"]), "value")
        self.clear_button.on_click(lambda _: self.state.clear_highlight())
        self.reload_button.on_click(lambda _: self.reload())
        s, one = self.state, self._one_message
        # Not held: with the points, the filter and the zoom in one message, jupyter-scatter's JavaScript
        # failed the new layout's draw ("reading 'destroy'"); it expects them trait by trait.
        s.on("coords", self._draw_coords)
        s.on("colors", one(self._draw_colors))
        s.on("highlight", one(self._draw_marks))
        s.on("focus", one(self._draw_focus))
        s.on("filter", one(self._draw_opacity))
        s.on("labels", one(self._draw_labels))
        s.on("selection", one(self._draw_selection))
        s.on("neighbours", one(self._draw_neighbours))
        s.on("progress", self._draw_progress)
        s.on("loaded", self._rebuild)
        s.on("fields", lambda: (self._sync(self._set_controls), self._draw_status()))
        if color_by is not None:
            s.color_by = color_by
        self._rebuild()

    # ---- Python API ---------------------------------------------------------------------

    @property
    def selection(self):
        """The selected points as a DataFrame (id, content, metadata)."""
        return self.state.selection

    def select(self, ids_or_indices) -> None:
        """Select points from Python (ids or point indices); the plot shows it."""
        self.state.select(ids_or_indices)

    def highlight(self, nodes, query_vector=None) -> None:
        """Highlight search results (nodes or ids) and dim the rest; ``None`` clears."""
        self.state.highlight(nodes, query_vector)

    def clear_search(self) -> None:
        """Remove the search highlight (the "clear search" button)."""
        self.state.clear_highlight()

    def focus(self, node_id: str | None) -> int | None:
        """Mark a node and centre the map on it (what a click on a table row does); its row or None."""
        return self.state.focus(node_id)

    def draw_labels(self, x, y, texts) -> None:
        """Draw text labels at layout positions (e.g. cluster labels); empty lists clear them."""
        self.state.set_labels(x, y, texts)

    def show_cluster_labels(self, on: bool = True) -> None:
        """Label the clusters of the layout at their centres (the "cluster labels" box); ``False`` removes them."""
        self.state.show_cluster_labels(on)

    @property
    def clusters(self):
        """The clusters of the layout shown, one row each (cluster, label, terms, size, x, y), biggest first."""
        return self.state.clusters.frame

    def show_filter(self, filter_dict: dict | None) -> None:
        """Draw the points ``filter_dict`` excludes faint (``None``: all points normal)."""
        self.state.show_filter(filter_dict)

    def show_umap(self, wait: bool = False, timeout: float | None = None) -> None:
        """Switch to UMAP (computed in a child process if not cached); ``wait=True`` blocks until it shows."""
        self.state.show("umap")
        if wait:
            self.state.wait_for_umap(timeout)

    def reload(self) -> None:
        self.state.load()

    def close(self) -> None:
        """Stop any UMAP computing for this map and close its widgets."""
        self.state.close()
        self.widget.close()

    @property
    def plot(self):
        """The jupyter-scatter widget (its traits are what the browser draws)."""
        return self.scatter.widget

    # ---- drawing ------------------------------------------------------------------------

    def _one_message(self, draw):
        """``draw`` with the plot's changes held until it ends: the browser gets them in one message and
        draws one frame (one change at a time, a colour change drew the new colours on the old values first,
        and a search's rings and dimming came a frame apart: a second each at a million points here)."""

        def held(*args) -> None:
            with self.scatter.widget.hold_sync():
                draw(*args)

        return held

    def _sync(self, fn, *args) -> None:
        self._syncing = True
        try:
            fn(*args)
        finally:
            self._syncing = False

    def _set_controls(self) -> None:
        s = self.state
        fields = s.fields if s.fields_known or not self.defer_fields else []  # deferred: until set_fields brings them
        self.color_box.options = [("(none)", "")] + [(f, f) for f in fields]
        self.color_box.value = s.color_by or ""
        self.scale_box.value = s.color_scale
        self.method_box.value = s.method
        self.labels_box.value = s.cluster_labels_on

    def _rebuild(self) -> None:
        """A new plot: after (re)loading the points."""
        s, pd = self.state, self._pd
        self._sync(self._set_controls)
        xy = s.coords[:, :2] if s.n_points else np.zeros((0, 2), np.float32)
        self._df = pd.DataFrame({"x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32), "id": s.ids})
        size = 6 if s.n_points < 5000 else 4 if s.n_points < 50_000 else 2 if s.n_points < 300_000 else 1
        self.scatter = self._jscatter.Scatter(data=self._df, x="x", y="y", height=self.height, size=size,
                                              color=BASE_COLOR, opacity=0.85, axes=False,
                                              # A click must never turn into a lasso: docs/explorer.md, "Clicks and the lasso".
                                              lasso_initiator=False, lasso_on_long_press=False,
                                              width="auto")
        self.scatter.legend(True, position="top-right")
        self.scatter.tooltip(True, properties=["id", "color"], preview="content")
        # Colours, opacity and selection are set before the widget exists, so its first message carries
        # them with the points: set after, each resent the points buffer, and a selection that reached
        # the browser before its first draw was never drawn.
        self._opacity_key = None
        self._draw_colors()
        self._draw_opacity()
        self.scatter.selection(list(s.selected))
        plot = self.scatter.widget
        plot._handle_custom_msg = self._on_plot_message  # hover: the content is read when asked for
        plot.observe(self._on_plot_selection, "selection")
        plot.observe(self._on_lasso_end, "lasso_selection_polygon")
        plot.add_class("vecbook-figure")
        plot.layout = self._w.Layout(width="100%")
        old, self.figure_box.children = self.figure_box.children, [plot]
        for widget in old:  # a plot left open keeps its points buffer in the kernel and in every page (re)load
            widget.close()
        self._draw_marks()
        self._draw_labels()
        self._draw_selection()
        self._draw_neighbours()

    def _draw_coords(self) -> None:
        s = self.state
        self._df["x"] = s.coords[:, 0].astype(np.float32)
        self._df["y"] = s.coords[:, 1].astype(np.float32)
        self.scatter.xy(x="x", y="y")  # the points move to the new layout, animated
        # ...and only this draw is animated: jupyter-scatter leaves the flag on, and every later points
        # buffer (a colour, a filter) then faded through the wrong categories' colours for 3 seconds.
        self.scatter.widget.transition_points = False
        # While UMAP places the rest, only its fitted sample is drawn: 4 bytes a drawn point, and the
        # browser keeps the points buffer.
        self.scatter.filter(None if s.placed is None else np.flatnonzero(s.placed))
        self.scatter.zoom(to=None)
        self._sync(setattr, self.method_box, "value", s.method)
        self._draw_marks()
        self._draw_labels()

    def _draw_colors(self) -> None:
        s, pd = self.state, self._pd
        enc = s.color_encoding()
        for column in [c for c in self._df.columns if c.startswith("colour:")]:
            del self._df[column]
        if enc["kind"] == "category":
            column = f"colour:{s.color_by}"
            self._df[column] = pd.Categorical.from_codes(enc["codes"], categories=enc["labels"])
            self.scatter.color(by=column, map=dict(zip(enc["labels"], category_colors(enc["labels"]))),
                               labeling={"variable": s.color_by})
        elif enc["kind"] in ("numeric", "ordinal"):
            column = f"colour:{s.color_by}:{enc['scale']}"
            self._df[column] = np.nan_to_num(enc["t"], nan=0.0)  # missing values take the low end
            ticks = enc["ticks"]
            self.scatter.color(by=column, map=NUMERIC_MAP, norm=(0, 1),
                               labeling={"variable": f"{s.color_by} ({enc['scale']})", "minValue": ticks[0][1] if ticks else "",
                                         "maxValue": ticks[-1][1] if ticks else ""})
        else:
            self.scatter.color(by=None, default=BASE_COLOR)
        self._sync(self._set_controls)
        self._draw_status()

    def _draw_opacity(self) -> None:
        """Dim for a search (colours stay), and draw the points a filter excluded fainter still."""
        s = self.state
        high = 0.4 if s.highlighted else 0.85
        key = (high, s.kept)
        if self._opacity_key is not None and key[0] == self._opacity_key[0] and _same_rows(key[1], self._opacity_key[1]):
            return  # unchanged (a new search with the same filter keeps the same points): no new buffer to the browser
        self._opacity_key = key
        if s.kept is None:
            if "kept" in self._df.columns:
                del self._df["kept"]
            self.scatter.opacity(by=None, default=high)
        else:
            kept = np.zeros(s.n_points, np.float32)
            kept[s.kept] = 1.0
            self._df["kept"] = kept
            self.scatter.opacity(by="kept", map=[0.07, high], norm=(0, 1))
        self._draw_status()

    def _radius(self) -> float:
        """The marks' size: 1.2 % of the layout's extent (once per layout: 60 ms at a million points)."""
        c = self.state.coords
        if self._extent is None or self._extent[0] is not c:
            self._extent = (c, float(np.ptp(c[:, :2], axis=0).max()) if len(c) else 1 / 0.012)
        return 0.012 * self._extent[1]

    def _draw_marks(self) -> None:
        """Search hits ringed, the query marked and linked to them, the clicked point's neighbours, the focus."""
        s, r = self.state, self._radius()
        shown = (lambda row: True) if s.placed is None else (lambda row: bool(s.placed[row]))  # not placed yet: hidden
        shapes: list[tuple[list, str | tuple, int]] = []  # (vertices in data space, colour, width)
        if s.query_xy is not None:
            qx, qy = s.query_xy
            for hx, hy in s.coords[[row for row in s.highlight_indices if shown(row)], :2]:
                shapes.append(([(qx, qy), (float(hx), float(hy))], (0.3, 0.3, 0.3, 0.6), 1))
            shapes.append(([(qx - 1.5 * r, qy), (qx + 1.5 * r, qy)], QUERY, 3))
            shapes.append(([(qx, qy - 1.5 * r), (qx, qy + 1.5 * r)], QUERY, 3))
        for row in filter(shown, s.highlight_indices):
            shapes.append((_ring(*s.coords[row, :2], r), HIGHLIGHT, 2))
        for row in filter(shown, [s.row_of[n.unique_id] for n in s.neighbours if n.unique_id in s.row_of]):
            shapes.append((_ring(*s.coords[row, :2], 0.8 * r), NEIGHBOUR, 1))
        if s.clicked in s.row_of and shown(s.row_of[s.clicked]):
            shapes.append((_ring(*s.coords[s.row_of[s.clicked], :2], 1.3 * r), NEIGHBOUR, 3))
        if s.focused is not None and shown(s.focused):
            shapes.append((_ring(*s.coords[s.focused, :2], 1.6 * r), FOCUS, 3))
        self.scatter.widget.annotations = self._ndc_lines(shapes) or None
        self._draw_opacity()
        self._draw_status()

    def _ndc_lines(self, shapes) -> list:
        """Lines in the plot's normalised coordinates, computed with numpy: jupyter-scatter's own
        ``annotations()`` normalises vertex by vertex through matplotlib (~1 ms each, 0.9 s for a click)."""
        w, Line = self.scatter.widget, self._jscatter.Line
        (x0, x1), (y0, y1) = w.x_scale_domain, w.y_scale_domain
        sx, sy = 2.0 / ((x1 - x0) or 1.0), 2.0 / ((y1 - y0) or 1.0)
        out = []
        for vertices, colour, width in shapes:
            v = np.asarray(vertices, dtype=np.float64)
            ndc = np.column_stack([(v[:, 0] - x0) * sx - 1.0, (v[:, 1] - y0) * sy - 1.0])
            out.append(Line([tuple(p) for p in ndc.tolist()], line_color=colour, line_width=width))
        return out

    def _draw_focus(self) -> None:
        s = self.state
        self._draw_marks()
        if s.focused is not None:  # centre on the point with its 2-D surroundings in view
            d = np.linalg.norm(s.coords[:, :2] - s.coords[s.focused, :2], axis=1)
            self.scatter.zoom(to=np.argsort(d)[:200].tolist(), animation=400, padding=0.5)

    def _draw_labels(self) -> None:
        s, w = self.state, self.scatter.widget
        self._sync(setattr, self.labels_box, "value", s.cluster_labels_on)
        self._draw_status()
        if not s.n_points or (not s.labels and w.labels is None):
            w.label_placement, w.labels = None, None
            return
        # Labels removed: the blank corner labels below are still sent, because jupyter-scatter's JavaScript
        # (renderLabels) keeps the labels it drew last when it is sent none.
        from jscatter.label_placement.utils import to_js

        # jupyter-scatter places labels relative to their own frame's extent: two empty labels at the
        # corners of the points' extent make that the map's extent (blank text draws nothing).
        (x0, y0), (x1, y1) = s.coords[:, :2].min(axis=0), s.coords[:, :2].max(axis=0)
        frame = self._pd.DataFrame({"x": [x for x, _, _ in s.labels] + [float(x0), float(x1)],
                                    "y": [y for _, y, _ in s.labels] + [float(y0), float(y1)],
                                    "label": [t for _, _, t in s.labels] + [" ", "  "]})
        placement = self._jscatter.LabelPlacement(frame, x="x", y="y", by="label!",
                                                  positioning="center_of_mass")
        placement.compute()
        w.label_tile_size = placement.tile_size
        w.labels = to_js(placement.get_labels_from_tiles(w.label_tiles))
        w.label_placement = placement

    def _draw_selection(self) -> None:
        s = self.state
        shown = self.scatter.widget.selection
        if not np.array_equal(np.asarray(shown if shown is not None else [], dtype=np.int64), np.asarray(s.selected, dtype=np.int64)):
            self._sync(self.scatter.selection, list(s.selected))
        if self.show_selection_table:
            if s.selected:
                head = f"<b>{len(s.selected):,} point(s) selected</b> (<code>map.selection</code> gives them as a DataFrame)"
                self.selection_html.value = head + _table.html_table(s.selection_records(limit=200), "vecbook-selection")
            else:
                self.selection_html.value = "<span style='color:#666;font-size:12px'>Select points with the lasso button of the map's toolbar.</span>"
        self._draw_status()

    def _draw_neighbours(self) -> None:
        s = self.state
        self._draw_marks()
        if s.error and not s.neighbours:
            self.neighbours_html.value = _table.message_html(s.error, "error")
        elif s.clicked is not None:
            head = f"<b>Nearest neighbours of</b> <code>{html.escape(s.clicked)}</code>"
            self.neighbours_html.value = head + _table.html_table(_table.records(s.neighbours), "vecbook-neighbours", empty="No neighbours.")
        else:
            self.neighbours_html.value = "<span style='color:#666;font-size:12px'>Click a point to list its nearest neighbours.</span>"

    def _draw_progress(self, fraction: float, message: str) -> None:
        failed = message.startswith(("failed", "UMAP failed"))
        ended = failed or message == "cancelled"
        self.progress.layout.display = "flex" if fraction < 1.0 and not ended else "none"
        self.progress.value = float(fraction)
        self.progress_label.value = _table.message_html(f"UMAP: {message}", "error" if failed else "info")

    def _draw_status(self) -> None:
        s = self.state
        parts = [s.describe().replace(f" {s.dims}-D", " 2-D" if s.dims == 2 else f" {s.dims}-D (first two axes drawn)")]
        if s.highlighted:
            shown = len(s.highlight_indices)
            parts.append(f"{shown} highlighted" + (f" ({len(s.highlighted) - shown} not in the sample)" if shown < len(s.highlighted) else ""))
        if s.kept is not None:
            parts.append(f"filter keeps {len(s.kept):,}")
        if s.selected:
            parts.append(f"{len(s.selected):,} selected")
        if s.cluster_error:
            parts.append(f"no cluster labels: {s.cluster_error}")
        if s.fields_error:
            parts.append(s.fields_error)
        self.status_html.value = f"<span style='font-size:12px'>{html.escape(' · '.join(parts))}</span>"

    # ---- events from the plot -----------------------------------------------------------

    def _on_plot_message(self, event: dict, buffers) -> None:
        """A hover asks for a point's details: its id from the map, its content read from the store
        (the map keeps no contents); jupyter-scatter's reply, in its format."""
        if not isinstance(event, dict) or event.get("type") != TOOLTIP:
            return
        row = int(event["index"])
        if not 0 <= row < self.state.n_points:
            return
        names = [p for p in event.get("properties") or [] if p in self._df.columns]
        properties = {p: _plain(self._df[p].iat[row]) for p in names}
        try:
            preview = self.state.content_of(row)[:300] if event.get("preview") else None
        except Exception as exc:  # the store is gone or failing: say so in the tooltip
            preview = f"(details unavailable: {exc})"
        self.scatter.widget.send({"type": TOOLTIP, "index": row, "preview": preview, "properties": properties})

    def _on_plot_selection(self, change) -> None:
        """A lasso fills the selection; a click selects one point, and lists its neighbours."""
        if self._syncing:
            return
        rows = [] if change["new"] is None else np.asarray(change["new"]).astype(np.int64).tolist()
        if rows == self.state.selected:
            return  # the browser's echo of our own selection
        ends, self._lasso_ends = self._lasso_ends, None
        if len(rows) == 1 and len(self.state.selected) > 1 and ends is not None and any(self._near(rows[0], xy) for xy in ends):
            # regl-scatterplot follows a lasso that ends where it began by a click there (it compares only where
            # the button went down and up): keep the lasso, and show it again.
            self._sync(self.scatter.selection, list(self.state.selected))
            return
        self._sync(self.state.select, rows)
        if len(rows) == 1:
            self.state.click(rows[0])

    def _on_lasso_end(self, change) -> None:
        """A lasso ended (its polygon, in layout coordinates, arrives after its selection): remember its two ends."""
        polygon = np.asarray(change["new"] if change["new"] is not None else [], dtype=np.float64)
        self._lasso_ends = (polygon[0, :2], polygon[-1, :2]) if polygon.ndim == 2 and len(polygon) > 2 else None

    def _near(self, row: int, xy: np.ndarray) -> bool:
        """Whether point ``row`` is among the points nearest ``xy`` on the layout (where a click there lands)."""
        d = np.linalg.norm(self.state.coords[:, :2] - xy, axis=1)
        k = min(max(TRAILING_CLICK_NEAREST, len(d) // 1000), len(d) - 1)  # dense maps: more points within a few pixels
        return bool(d[row] <= np.partition(d, k)[k])
