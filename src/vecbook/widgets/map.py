"""EmbeddingMap: a plotly FigureWidget (WebGL) over a MapState."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from . import _deps, _table
from .map_state import MapState
from .search import _Widget

__all__ = ["EmbeddingMap"]

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939"]
HIGHLIGHT = "#e6194b"
NEIGHBOUR = "#111111"
BASE, HITS, NEAR = 0, 1, 2  # trace order


class EmbeddingMap(_Widget):
    """A 2-D (or 3-D) map of a workspace's vectors.

    PCA shows at once; "UMAP" computes in a thread with a progress bar, then
    replaces it (projections are cached by a fingerprint of ids + vectors).
    Colour by any metadata field; hover shows content and metadata; search
    results passed to :meth:`highlight` stand out while the rest is dimmed;
    clicking a point lists its nearest neighbours with scores; box/lasso
    selection is readable and settable from Python (:attr:`selection`,
    :meth:`select`). Above ``max_points`` a fixed random sample is drawn, and
    the status line says so.
    """

    def __init__(self, store, workspace_id: str, dims: int = 2, color_by: str | None = None, max_points: int = 200_000,
                 cache_dir: Any = None, neighbours_k: int = 10, height: int = 480, show_selection_table: bool = True,
                 umap_params: dict | None = None):
        w = _deps.widgets()
        self._go = _deps.graph_objects()
        self.state = MapState(store, workspace_id, dims=dims, max_points=max_points, cache_dir=cache_dir,
                              neighbours_k=neighbours_k, umap_params=umap_params)
        self.height = height
        self.show_selection_table = show_selection_table
        self._hit_rows: list[int] = []
        self._near_rows: list[int] = []
        self.method_box = w.ToggleButtons(options=[("PCA", "pca"), ("UMAP", "umap")], value="pca", style={"button_width": "60px"})
        self.method_box.add_class("vecbook-projection")
        self.dims_box = w.ToggleButtons(options=[("2-D", 2), ("3-D", 3)], value=dims, style={"button_width": "44px"})
        self.color_box = w.Dropdown(description="colour", layout=w.Layout(width="220px"), style={"description_width": "45px"})
        self.color_box.add_class("vecbook-color-by")
        self.reload_button = w.Button(description="↻", tooltip="re-read the workspace", layout=w.Layout(width="40px"))
        self.progress = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="200px", display="none"))
        self.progress_label = w.HTML()
        self.progress_label.add_class("vecbook-umap-progress")
        self.status_html = w.HTML()
        self.status_html.add_class("vecbook-map-status")
        self.figure_box = w.Box()
        self.neighbours_html = w.HTML()
        self.neighbours_html.add_class("vecbook-neighbours-box")
        self.selection_html = w.HTML()
        self.selection_html.add_class("vecbook-selection-box")
        children = [w.HBox([self.method_box, self.dims_box, self.color_box, self.reload_button]),
                    w.HBox([self.progress, self.progress_label]), self.status_html, self.figure_box, self.neighbours_html]
        if show_selection_table:
            children.append(self.selection_html)
        self.widget = w.VBox(children)
        self.widget.add_class("vecbook-map")
        self._syncing = False
        self._plot_selecting = False
        self.method_box.observe(lambda c: self._syncing or self.state.show(c["new"]), "value")
        self.dims_box.observe(lambda c: self._syncing or self.state.show(self.state.method, dims=c["new"]), "value")
        self.color_box.observe(lambda c: self._syncing or self.state.set_color(c["new"] or None), "value")
        self.reload_button.on_click(lambda _: self.reload())
        s = self.state
        s.on("coords", self._draw_coords)
        s.on("colors", self._draw_colors)
        s.on("highlight", self._draw_highlight)
        s.on("selection", self._draw_selection)
        s.on("neighbours", self._draw_neighbours)
        s.on("progress", self._draw_progress)
        s.on("loaded", self._rebuild)
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

    def highlight(self, nodes) -> None:
        """Highlight search results (nodes or ids) and dim the rest; ``None`` clears."""
        self.state.highlight(nodes)

    def show_umap(self, wait: bool = False, timeout: float | None = None) -> None:
        """Switch to UMAP (computed in a thread if not cached); ``wait=True`` blocks until it shows."""
        self.state.show("umap")
        if wait:
            self.state.wait_for_umap(timeout)

    def reload(self) -> None:
        self.state.load()

    @property
    def figure(self):
        return self.fig

    # ---- drawing ------------------------------------------------------------------------

    def _trace(self, **kwargs):
        go = self._go
        if self.state.dims == 3:  # no box/lasso selection in 3-D
            kwargs.pop("selected", None)
            kwargs.pop("unselected", None)
            return go.Scatter3d(**kwargs)
        return go.Scattergl(**kwargs)

    def _xyz(self, rows=None) -> dict[str, Any]:
        c = self.state.coords if rows is None else self.state.coords[rows]
        xyz = {"x": np.ascontiguousarray(c[:, 0], dtype=np.float32), "y": np.ascontiguousarray(c[:, 1], dtype=np.float32)}
        if self.state.dims == 3:
            xyz["z"] = np.ascontiguousarray(c[:, 2], dtype=np.float32)
        return xyz

    def _rebuild(self) -> None:
        """A new figure: after loading data or switching between 2-D and 3-D."""
        go, s = self._go, self.state
        self._syncing = True
        try:
            self.color_box.options = [("(none)", "")] + [(f, f) for f in s.fields]
            self.color_box.value = s.color_by or ""
            self.dims_box.value = s.dims
            self.method_box.value = s.method
        finally:
            self._syncing = False
        # An object array passes plotly's validation in one step instead of one check per string.
        self._hover = np.array(s.hover_texts(content_chars=100 if s.n_points <= 50_000 else 60,
                                             max_fields=4 if s.n_points <= 50_000 else 2), dtype=object)
        size = 5 if s.n_points < 5000 else 3 if s.n_points < 50_000 else 2
        base = self._trace(mode="markers", name="points", hovertext=self._hover, hoverinfo="text", showlegend=False,
                           marker={"size": size, "opacity": 0.8}, selected={"marker": {"opacity": 0.9}},
                           unselected={"marker": {"opacity": 0.1}}, **self._xyz())
        hits = self._trace(mode="markers", name="search results", hoverinfo="text", x=[], y=[], **({"z": []} if s.dims == 3 else {}),
                           marker={"size": 10, "color": HIGHLIGHT, "line": {"width": 1.5, "color": "#222"}},
                           selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}})
        near = self._trace(mode="markers", name="neighbours", hoverinfo="text", x=[], y=[], **({"z": []} if s.dims == 3 else {}),
                           marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": NEIGHBOUR}},
                           selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}})
        layout = {"height": self.height, "margin": {"l": 10, "r": 10, "t": 10, "b": 10}, "dragmode": "lasso" if s.dims == 2 else "orbit",
                  "hovermode": "closest", "legend": {"x": 0, "y": 1, "bgcolor": "rgba(255,255,255,0.7)"}, "uirevision": "map",
                  "xaxis": {"showticklabels": False, "zeroline": False}, "yaxis": {"showticklabels": False, "zeroline": False}}
        self.fig = go.FigureWidget(data=[base, hits, near], layout=layout)
        self.fig.add_class("vecbook-figure")
        for trace in self.fig.data:
            trace.on_click(self._on_click)
        if s.dims == 2:
            # A drag's points callback shares one synced slot with hover events and can be overwritten
            # before it reaches the kernel; the selection shapes (layout.selections) always arrive, so
            # they are the source of truth and the points callback only a faster path to the same result.
            self.fig.layout.on_change(self._on_region, "selections")
            self.fig.data[BASE].on_selection(self._on_select)
            self.fig.data[BASE].on_deselect(lambda trace, points: self._from_plot(self.state.select, []))
        self.figure_box.children = [self.fig]
        self._draw_colors()
        self._draw_highlight()
        self._draw_selection()
        self._draw_neighbours()
        self._draw_status()

    def _draw_coords(self) -> None:
        if (self.fig.data[BASE].type == "scatter3d") != (self.state.dims == 3):
            self._rebuild()
            return
        with self.fig.batch_update():
            self.fig.data[BASE].update(**self._xyz())
            self.fig.layout.xaxis.autorange = True
            self.fig.layout.yaxis.autorange = True
        self._syncing = True
        try:
            self.method_box.value = self.state.method
        finally:
            self._syncing = False
        self._draw_highlight()
        self._draw_neighbours()
        self._draw_status()

    def _draw_colors(self) -> None:
        spec = self.state.color_spec()
        marker: dict[str, Any] = {"showscale": False, "color": "#3b6ea5", "colorscale": None}
        if spec["kind"] in ("numeric", "ordinal"):
            values = spec["values"]
            missing = np.isnan(values)
            fill = np.nanmin(values) if (~missing).any() else 0.0  # missing values take the low end
            colorbar = {"title": {"text": self.state.color_by}, "thickness": 12}
            if spec["kind"] == "ordinal":
                colorbar.update(tickvals=spec["tickvals"], ticktext=spec["ticktext"])
            marker = {"color": np.where(missing, fill, values).astype(np.float32), "colorscale": "Viridis", "showscale": True,
                      "colorbar": colorbar}
        elif spec["kind"] == "category":
            labels, k = spec["labels"], len(spec["labels"])
            colours = [("#bbbbbb" if lab == "(missing)" else "#888888" if lab == "other" else PALETTE[i % len(PALETTE)]) for i, lab in enumerate(labels)]
            scale = [s for i, c in enumerate(colours) for s in ((i / k, c), ((i + 1) / k, c))]
            marker = {"color": spec["codes"].astype(np.float32), "colorscale": scale, "cmin": -0.5, "cmax": k - 0.5, "showscale": True,
                      "colorbar": {"title": {"text": self.state.color_by}, "tickvals": list(range(k)), "ticktext": labels, "thickness": 12}}
        with self.fig.batch_update():
            self.fig.data[BASE].marker.update(marker)
        self._syncing = True
        try:
            self.color_box.value = self.state.color_by or ""
        finally:
            self._syncing = False

    def _draw_highlight(self) -> None:
        s = self.state
        rows = s.highlight_indices
        self._hit_rows = rows
        scores = [s.highlighted[s.ids[r]] for r in rows]
        text = [f"#{i + 1}" + (f" score {sc:.3f}" if sc is not None else "") + "<br>" + self._hover[r] for i, (r, sc) in enumerate(zip(rows, scores))]
        with self.fig.batch_update():
            self.fig.data[HITS].update(hovertext=text, **self._xyz(rows))
            self.fig.data[BASE].marker.opacity = 0.15 if s.highlighted else 0.8
        self._draw_status()

    def _draw_selection(self) -> None:
        s = self.state
        if s.dims == 2 and not self._plot_selecting:  # the plot already shows its own selections
            self._plot_selecting = True  # our own edit of layout.selections is not a user's selection
            try:
                with self.fig.batch_update():
                    self.fig.layout.selections = ()
                    self.fig.data[BASE].selectedpoints = list(s.selected) if s.selected else None
            finally:
                self._plot_selecting = False
        if self.show_selection_table:
            if s.selected:
                head = f"<b>{len(s.selected):,} point(s) selected</b> (<code>map.selection</code> gives them as a DataFrame)"
                self.selection_html.value = head + _table.html_table(s.selection_records(limit=200), "vecbook-selection")
            else:
                self.selection_html.value = "<span style='color:#666;font-size:12px'>Box or lasso select points to list them here.</span>"
        self._draw_status()

    def _draw_neighbours(self) -> None:
        s = self.state
        rows = ([s.row_of[s.clicked]] if s.clicked in s.row_of else []) + [s.row_of[n.unique_id] for n in s.neighbours if n.unique_id in s.row_of]
        self._near_rows = rows
        with self.fig.batch_update():
            self.fig.data[NEAR].update(hovertext=[self._hover[r] for r in rows], **self._xyz(rows))
        if s.error and not s.neighbours:
            self.neighbours_html.value = _table.message_html(s.error, "error")
        elif s.clicked is not None:
            head = f"<b>Nearest neighbours of</b> <code>{html.escape(s.clicked)}</code>"
            self.neighbours_html.value = head + _table.html_table(_table.records(s.neighbours), "vecbook-neighbours", empty="No neighbours.")
        else:
            self.neighbours_html.value = "<span style='color:#666;font-size:12px'>Click a point to list its nearest neighbours (inside a selection, double-click to clear it first).</span>"

    def _draw_progress(self, fraction: float, message: str) -> None:
        failed = message.startswith(("failed", "UMAP failed"))
        self.progress.layout.display = "flex" if fraction < 1.0 and not failed else "none"
        self.progress.value = float(fraction)
        kind = "error" if failed else "info"
        self.progress_label.value = _table.message_html(f"UMAP: {message}", kind)

    def _draw_status(self) -> None:
        s = self.state
        parts = [s.describe()]
        if s.highlighted:
            shown = len(s.highlight_indices)
            parts.append(f"{shown} highlighted" + (f" ({len(s.highlighted) - shown} not in the sample)" if shown < len(s.highlighted) else ""))
        if s.selected:
            parts.append(f"{len(s.selected):,} selected")
        self.status_html.value = f"<span style='font-size:12px'>{html.escape(' · '.join(parts))}</span>"

    # ---- events from the plot -----------------------------------------------------------

    def _on_click(self, trace, points, state) -> None:
        if not points.point_inds:
            return
        i = points.point_inds[0]
        # The overlays hold copies of some points; map their index back to the point's row.
        rows = {"search results": self._hit_rows, "neighbours": self._near_rows}.get(trace.name)
        self.state.click(int(rows[i] if rows is not None else i))

    def _from_plot(self, fn, *args) -> None:
        self._plot_selecting = True
        try:
            fn(*args)
        finally:
            self._plot_selecting = False

    def _on_select(self, trace, points, selector) -> None:
        self._from_plot(self.state.select, list(points.point_inds))

    def _on_region(self, layout, selections) -> None:
        if self._plot_selecting:
            return
        # The callback's own argument can be stale for relayouts from the browser; the layout's JSON is not.
        self._from_plot(self.state.select_region, self.fig.layout.to_plotly_json().get("selections") or [])
