"""Plain-Python state of the embedding map: points, colours, highlight, selection, neighbours.

``EmbeddingMap`` (map.py) draws this state with jupyter-scatter; tests drive it
directly. The map holds ids and vectors alone, read once through the public
store API, sorted by id (so the projection cache key does not depend on a
backend's iteration order), and a stratified sample above ``max_points``
(map_sample.py; ``sampled`` says so). Contents and metadata are read from the
store when something shows them (:meth:`MapState.nodes`, :meth:`MapState.field_values`,
:attr:`MapState.contents`, :meth:`MapState.show_filter`). The projection (PCA, UMAP
in a child process) is the :class:`~vecbook.widgets.map_layout.MapLayout` mixin's.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..node import VectorNode
from . import _deps, _table
from .clusters import Clusters, cluster_labels
from .introspect import _ISO_DATE, field_label, flat_rows
from .map_colors import scaled
from .map_layout import UMAP_OPTIONS, MapLayout
from .map_rows import RowIndex, read_aligned
from .map_sample import DEFAULT_MAX_POINTS, PointsRead, load_points
from .projection import ProjectionCache, UmapJob, fingerprint
from .state import Observable, describe_error

__all__ = ["MapState", "load_points", "MAX_CATEGORIES"]

MAX_CATEGORIES = 12


class MapState(MapLayout, Observable):
    """Everything the map shows, as data.

    Events: ``"coords"`` (new projection), ``"colors"``, ``"highlight"``,
    ``"selection"``, ``"neighbours"``, ``"progress"`` (UMAP), ``"loaded"``,
    ``"focus"`` (a row to centre on), ``"labels"`` (text at positions),
    ``"filter"`` (which points a search filter keeps), ``"fields"`` (the metadata fields became known). Cluster labels
    (:meth:`show_cluster_labels`) follow every new layout while they are on.
    """

    def __init__(self, store, workspace_id: str, dims: int = 2, max_points: int = DEFAULT_MAX_POINTS,
                 cache_dir: Any = None, neighbours_k: int = 10, umap_params: dict | None = None,
                 points: PointsRead | None = None):
        self.store = store
        self.workspace_id = workspace_id
        self.dims = dims
        self.max_points = max_points
        self.cache = ProjectionCache(cache_dir)
        self.neighbours_k = neighbours_k
        self.umap_params = dict(umap_params or {})
        if unknown := sorted(set(self.umap_params) - set(UMAP_OPTIONS)):
            raise ValueError(f"unknown umap_params {', '.join(map(repr, unknown))}; known: {', '.join(UMAP_OPTIONS)}")
        self.method = "pca"
        self.color_by: str | None = None
        self.color_scale = "linear"
        self.query_xy: tuple[float, float] | None = None
        self.focused: int | None = None
        self.labels: list[tuple[float, float, str]] = []
        self.cluster_labels_on = False
        self.cluster_error: str | None = None
        self.fields_error: str | None = None  # why the colour menu has no fields (the explorer's schema failed)
        self._labels_are_clusters = False
        self._clusters: tuple[tuple, Clusters] | None = None  # (layout key, clusters of that layout)
        self.kept: np.ndarray | None = None  # rows a search filter keeps (None: no filter)
        self.filter_dict: dict | None = None
        self.highlighted: dict[str, float | None] = {}
        self.selected: list[int] = []
        self.clicked: str | None = None
        self.neighbours: list[VectorNode] = []
        self.error: str | None = None
        self.job: UmapJob | None = None
        self._job_key: str | None = None
        self.placed: np.ndarray | None = None  # while UMAP places the rest: which rows its fitted sample laid out
        self.umap_message = ""
        self._lock = threading.Lock()
        self.load(points)

    # ---- data ---------------------------------------------------------------------------

    def load(self, points: PointsRead | None = None) -> None:
        """(Re)read the workspace; keeps the projection method and the selection (its points still there),
        drops the highlight.

        Reads ids and vectors alone (:func:`load_points`; ``points``: that read, started earlier
        by the caller); contents and metadata are read when
        something shows them: a table's rows (:meth:`nodes`), one field's column for colour
        (:meth:`field_values`), every content for cluster labels (:attr:`contents`).
        """
        kept_ids = self.selected_ids if self.selected else []
        self.ids, self.vectors, self.total, self._source_ids, self._source_rows = load_points(
            self.store, self.workspace_id, self.max_points, points)
        self.row_of = RowIndex(self.ids)
        self.fingerprint = fingerprint(self.ids, self.vectors)
        if self.job is not None and self.job.running and self._job_key != self._key("umap"):
            self.cancel_umap()  # a layout of data the map no longer shows
        self._values: dict[str, list[Any]] = {}
        self._contents: list[str] | None = None
        self._field_paths: dict[str, tuple[str, ...]] | None = None
        self.selected = sorted({self.row_of[i] for i in kept_ids if i in self.row_of})
        self.neighbours, self.clicked = [], None
        self.highlighted, self.query_xy, self.focused, self.kept, self.placed = {}, None, None, None, None
        if self.color_by is not None and self.color_by not in self.fields:
            self.color_by = None
        self.method = self.method if self.method == "pca" or self.cached("umap") else "pca"
        self.coords = self.projection(self.method)  # before "loaded": a view draws the new points at once
        self._follow_layout()
        self._emit("loaded")

    @property
    def n_points(self) -> int:
        return len(self.ids)

    @property
    def sampled(self) -> bool:
        return self.n_points < self.total

    def describe(self) -> str:
        """The line under the map: what is shown, and whether it is a sample."""
        method = "UMAP" if self.method == "umap" else "PCA"
        if self.placed is not None:
            method += f" ({int(self.placed.sum()):,} fitted points shown while the rest are placed)"
        if self.sampled:
            return f"{self.n_points:,} of {self.total:,} points (a stratified sample), {method} {self.dims}-D"
        return f"{self.n_points:,} points, {method} {self.dims}-D"

    @property
    def fields(self) -> list[str]:
        """The metadata fields (labels as in tables: nested keys dotted, a key holding a dot quoted),
        from the store's introspection (``metadata_fields``), read when first asked for."""
        return sorted(self._paths())

    @property
    def fields_known(self) -> bool:
        """Whether :attr:`fields` is at hand (read, or given by :meth:`set_fields`) without asking the store."""
        return self._field_paths is not None

    def set_fields(self, paths, error: str | None = None) -> None:
        """The metadata fields, as paths, from an introspection already made (the explorer's search panel
        reads the same schema); ``error`` says why there are none (shown under the map); emits ``"fields"``."""
        self._field_paths = {field_label(p): tuple(p) for p in paths}
        self.fields_error = error
        if self.color_by is not None and self.color_by not in self._field_paths:
            self.color_by = None
            self._emit("colors")
        self._emit("fields")

    def _paths(self) -> dict[str, tuple[str, ...]]:
        if self._field_paths is None:
            found = self.store.metadata_fields(self.workspace_id) if self.total else []
            self._field_paths = {field_label(f.path): tuple(f.path) for f in found}
        return self._field_paths

    def _columns(self, names: list[str], rows: list[int] | None = None) -> list[list[Any]]:
        """Columns (``"contents"``, ``"metadatas"``) of drawn points ``rows`` (all: ``None``), from the store now."""
        return read_aligned(self.store, self.workspace_id, names, self.ids, self._source_ids, self._source_rows, rows)

    @property
    def contents(self) -> list[str]:
        """Every drawn point's content (read once, when first asked for: cluster labels need them)."""
        if self._contents is None:
            self._contents = [c or "" for c in self._columns(["contents"])[0]]
        return self._contents

    def field_values(self, field: str) -> list[Any]:
        """Every drawn point's value of one field (``None`` where missing), read along its path."""
        if field not in self._values:
            path = self._paths().get(field)
            if path is None:
                raise KeyError(f"no metadata field {field!r}; fields: {', '.join(self.fields)}")

            def value(metadata: Any) -> Any:
                v = metadata
                for part in path:
                    v = v.get(part) if isinstance(v, dict) else None
                return None if isinstance(v, dict) and v else v

            self._values[field] = [value(m) for m in self._columns(["metadatas"])[0]]
        return self._values[field]

    def nodes(self, rows: list[int]) -> list[VectorNode | None]:
        """The stored nodes of drawn points (by row), read from the store now; ``None`` for one deleted since."""
        ids = [self.ids[r] for r in rows]
        found: dict[str, VectorNode] = {}
        for start in range(0, len(ids), 50_000):
            found.update((n.unique_id, n) for n in self.store.get(ids[start : start + 50_000], self.workspace_id))
        return [found.get(i) for i in ids]

    def content_of(self, row: int) -> str:
        """One point's content (a hover's preview), read from the store."""
        node = self.nodes([row])[0]
        return "" if node is None else node.content

    def close(self) -> None:
        """Stop any UMAP computing for this map (the explorer calls it when it closes)."""
        self.cancel_umap()

    # ---- colours and hover --------------------------------------------------------------

    def set_color(self, field: str | None, scale: str | None = None) -> None:
        """Colour by a metadata field (``None``: one colour); numbers on ``scale`` (linear, log, quantile)."""
        if field is not None and field not in self.fields:
            raise KeyError(f"no metadata field {field!r}; fields: {', '.join(self.fields)}")
        if scale is not None:
            scaled([], scale)  # checks the name
            self.color_scale = scale
        self.color_by = field
        self._emit("colors")

    def color_encoding(self) -> dict[str, Any]:
        """What the view draws: ``color_spec`` with numbers mapped to [0, 1] on ``color_scale``
        (``"t"`` and legend ``"ticks"``); categories keep their codes and labels."""
        spec = self.color_spec()
        if spec["kind"] == "numeric":
            spec.update(scaled(spec["values"], self.color_scale), scale=self.color_scale)
        elif spec["kind"] == "ordinal":
            top = max(float(np.nanmax(spec["values"])), 1.0) if (~np.isnan(spec["values"])).any() else 1.0
            spec.update(t=(spec["values"] / top).astype(np.float32), scale="time order",
                        ticks=[(v / top, text) for v, text in zip(spec["tickvals"], spec["ticktext"])])
        return spec

    def color_spec(self) -> dict[str, Any]:
        """``{"kind": "none"}``, ``{"kind": "numeric", "values"}`` (NaN = missing), ``{"kind": "ordinal",
        "values", "tickvals", "ticktext"}`` (many ISO dates, in time order) or ``{"kind": "category", "codes",
        "labels"}`` (the last labels may be "other" and "(missing)")."""
        if self.color_by is None or not self.n_points:
            return {"kind": "none"}
        raw = self.field_values(self.color_by)
        types = set(map(type, raw))  # one pass in C; the Python passes below run only for the types that need them
        if types & {list, tuple}:  # a list colours by its first value
            raw = [v[0] if isinstance(v, (list, tuple)) and v else (None if isinstance(v, (list, tuple)) else v) for v in raw]
            types = set(map(type, raw))
        if types != {type(None)} and all(t is type(None) or (issubclass(t, (int, float)) and not issubclass(t, bool)) for t in types):
            return {"kind": "numeric", "values": np.fromiter((np.nan if v is None else v for v in raw), np.float64, len(raw))}
        # Categories, coded column-wise (a million values): factorize keeps first-seen order, as Counter does.
        pd = _deps.pandas()
        keys = raw if types <= {str, type(None)} else [None if v is None else v if type(v) is str else str(v) for v in raw]
        codes, uniques = pd.factorize(np.asarray(keys, dtype=object), use_na_sentinel=True)
        uniques = [str(u) for u in uniques]
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        if len(uniques) > MAX_CATEGORIES and types <= {str, type(None)} and all(_ISO_DATE.match(u) for u in uniques):
            # Many dates: a continuous scale in time order reads better than 11 dates and "other".
            order = sorted(uniques)
            rank = {label: i for i, label in enumerate(order)}
            lut = np.array([rank[u] for u in uniques], dtype=np.float64)
            ticks = [order[int(round(i))] for i in np.linspace(0, len(order) - 1, 6)]
            return {"kind": "ordinal", "values": np.where(codes < 0, np.nan, lut[np.maximum(codes, 0)]),
                    "tickvals": [rank[t] for t in ticks], "ticktext": ticks}
        by_count = np.argsort(-counts, kind="stable")  # most common first, ties in first-seen order
        top = [uniques[i] for i in by_count[:MAX_CATEGORIES]]
        labels = sorted(top)
        if len(uniques) > MAX_CATEGORIES:
            labels = sorted(top[: MAX_CATEGORIES - 1]) + ["other"]
        index = {label: i for i, label in enumerate(labels)}
        other = index.get("other", -1) if len(uniques) > MAX_CATEGORIES else -1
        missing = len(labels)
        lut = np.array([index.get(u, other) for u in uniques] or [0], dtype=np.int32)
        codes = np.where(codes < 0, missing, lut[np.maximum(codes, 0)]).astype(np.int32)
        if (codes == missing).any():
            labels.append("(missing)")
        return {"kind": "category", "codes": codes, "labels": labels}

    # ---- highlight, selection, neighbours -------------------------------------------------

    def highlight(self, nodes: list[VectorNode] | list[str] | None, query_vector: Any = None) -> None:
        """Mark search results (nodes with scores, or ids); the rest of the map is dimmed.

        The query itself is placed on the layout (``query_xy``, see ``_place_query``) and linked to its hits.
        """
        self.highlighted = {}
        for item in nodes or []:
            if isinstance(item, VectorNode):
                self.highlighted[item.unique_id] = item.score
            else:
                self.highlighted[str(item)] = None
        self.query_xy = self._place_query(query_vector)
        self._emit("highlight")

    def clear_highlight(self) -> None:
        self.highlight(None)

    def _place_query(self, query_vector: Any = None) -> tuple[float, float] | None:
        """Where the query sits on the layout: on PCA its own projection (PCA is linear: the map from
        vectors to coordinates is fitted on up to 2,000 points); else, or without its vector, the
        score-weighted mean of its hits' positions (how UMAP's ``transform`` starts a new point)."""
        rows = self.highlight_indices
        if self.placed is not None:
            rows = [r for r in rows if self.placed[r]]
        if not rows:
            return None
        if query_vector is not None and self.method == "pca" and self.n_points > self.vectors.shape[1]:
            fit = np.linspace(0, self.n_points - 1, min(self.n_points, 2000)).astype(int)
            a = np.hstack([self.vectors[fit].astype(np.float64), np.ones((len(fit), 1))])
            coef, *_ = np.linalg.lstsq(a, self.coords[fit, :2].astype(np.float64), rcond=None)
            x, y = np.append(np.asarray(query_vector, dtype=np.float64), 1.0) @ coef
            return float(x), float(y)
        scores = np.array([self.highlighted[self.ids[r]] or 0.0 for r in rows], dtype=np.float64)
        weights = np.clip(scores, 1e-6, None) if (scores > 0).any() else np.ones(len(rows))
        x, y = (self.coords[rows, :2] * weights[:, None]).sum(axis=0) / weights.sum()
        return float(x), float(y)

    def show_filter(self, filter_dict: dict | None) -> None:
        """Mark which points a search filter keeps (the view draws the others apart); ``None`` clears."""
        self.filter_dict = filter_dict or None
        try:
            self.kept = None if not filter_dict else self._kept_rows(filter_dict)
        except Exception as exc:  # a filter the search rejected too: nothing to mark
            self.kept, self.error = None, describe_error(exc)
        self._emit("filter")

    def _kept_rows(self, filter_dict: dict) -> np.ndarray:
        """Rows of the drawn points the filter keeps, asked of the store (the filter's ids, then a set test per point)."""
        keep = set(self.store.read_columns(self.workspace_id, filter_dict=filter_dict, columns=["ids"]).ids)
        return np.flatnonzero(np.fromiter((i in keep for i in self.ids), dtype=bool, count=self.n_points))

    def focus(self, node_id: str | None) -> int | None:
        """Centre the map on a node and mark it (a click on a table row); returns its row, None if not on the map."""
        self.focused = self.row_of.get(node_id) if node_id is not None else None
        self._emit("focus")
        return self.focused

    def set_labels(self, x, y, texts) -> None:
        """Text labels at layout positions (cluster labels: widgets/clusters.py); empty clears."""
        self.labels = [(float(a), float(b), str(t)) for a, b, t in zip(x, y, texts)]
        self._labels_are_clusters = False
        self._emit("labels")

    # ---- cluster labels -------------------------------------------------------------------

    @property
    def clusters(self) -> Clusters:
        """Clusters of the layout shown (k-means + distinctive terms, :mod:`.clusters`), computed once per layout."""
        key = (self.fingerprint, self.method, self.dims, self.n_points, self.placed is None)
        if self._clusters is None or self._clusters[0] != key:
            self._clusters = (key, cluster_labels(self.coords[:, :2], self.contents))
        return self._clusters[1]

    def show_cluster_labels(self, on: bool = True) -> None:
        """Label each cluster of the layout at its centre (``False`` removes them); kept across layouts and reloads."""
        self.cluster_labels_on = bool(on)
        self._follow_layout()
        self._emit("labels")

    def _follow_layout(self) -> None:
        """Cluster labels for the current layout, or none when they are off (no event: the caller emits)."""
        self.cluster_error = None
        if not self.cluster_labels_on or not self.n_points or self.placed is not None:
            if self._labels_are_clusters:  # labels drawn from code (set_labels) stay
                self.labels, self._labels_are_clusters = [], False
            return
        try:
            frame = self.clusters.frame
        except Exception as exc:  # e.g. scikit-learn missing: said under the map, the map keeps working
            self.labels, self.cluster_error = [], describe_error(exc)
            return
        self.labels = [(float(x), float(y), str(t)) for x, y, t in zip(frame["x"], frame["y"], frame["label"])]
        self._labels_are_clusters = True

    @property
    def highlight_indices(self) -> list[int]:
        return [self.row_of[i] for i in self.highlighted if i in self.row_of]

    def select(self, ids_or_indices: list[Any] | None) -> None:
        """Set the selection from Python: ids, or point indices (as the plot reports them)."""
        chosen = []
        for item in ids_or_indices or []:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if 0 <= item < self.n_points:
                    chosen.append(int(item))
            elif str(item) in self.row_of:
                chosen.append(self.row_of[str(item)])
        self.selected = sorted(set(chosen))
        self._emit("selection")

    @property
    def selected_ids(self) -> list[str]:
        return [self.ids[i] for i in self.selected]

    def selection_records(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self.selected if limit is None else self.selected[:limit]
        return [_table.node_record(node) for node in self.nodes(rows) if node is not None]

    @property
    def selection(self):
        """The selected points as a DataFrame (id, content, metadata columns), as ``selection_records`` rows.

        Read from the store now (``read_columns(node_ids=...)``: no node, no vector per point) and
        built column-wise: a lasso can hold 100,000 points. A point deleted since is left out.
        """
        if not self.selected:
            return _table.frame([])
        read = self.store.read_columns(self.workspace_id, node_ids=self.selected_ids, columns=["ids", "contents", "metadatas"])
        found = list(zip(read.ids, read.contents, read.metadatas))
        meta = _table.frame(flat_rows([m for _, _, m in found]))
        meta.columns = [f"meta.{c}" if c in ("id", "content", "score") else c for c in meta.columns]
        meta.insert(0, "content", [c for _, c, _ in found])
        meta.insert(0, "id", [i for i, _, _ in found])
        return meta

    def click(self, point: int | str) -> list[VectorNode]:
        """The nearest neighbours of a point (by index or id), with scores, the point itself left out."""
        row = point if isinstance(point, (int, np.integer)) else self.row_of.get(str(point))
        if row is None or not 0 <= row < self.n_points:
            self.error = f"no point {point!r} on the map"
            self._emit("neighbours")
            return []
        self.clicked, self.error = self.ids[row], None
        try:
            hits = self.store.search_by_vector(self.vectors[row], self.workspace_id, top_k=self.neighbours_k + 1)
            self.neighbours = [h for h in hits if h.unique_id != self.clicked][: self.neighbours_k]
        except Exception as exc:  # shown under the map; the map keeps working
            self.neighbours, self.error = [], describe_error(exc)
        self._emit("neighbours")
        return self.neighbours
