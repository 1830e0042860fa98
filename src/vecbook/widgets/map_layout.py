"""The map's layout: PCA at once, UMAP fitted in a child process, both cached by content.

A mixin of :class:`~vecbook.widgets.map_state.MapState`, which owns the state it uses:
it reads ``cache``, ``umap_params``, ``fingerprint``, ``vectors``, ``n_points`` and
``highlighted``; it writes ``dims``, ``method``, ``coords``, ``placed``, ``query_xy``,
``selected``, ``job``, ``_job_key``, ``umap_message`` and ``error`` (all set in
``MapState.__init__`` or ``MapState.load``); and it calls ``_emit`` (events ``"coords"``
and ``"progress"``), ``_place_query`` and ``_follow_layout`` (the query marker and the
cluster labels follow each new layout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LayoutCancelledError
from ._events import describe_error
from .projection import UmapJob, layout_params, pca

__all__ = ["MapLayout", "UMAP_OPTIONS"]

# What ``umap_params`` may hold: UMAP's own options, and how many points it fits (the rest are placed
# beside their ``place_k`` nearest fitted points: projection.UmapJob).
UMAP_OPTIONS = ("n_neighbors", "min_dist", "metric", "n_epochs", "sample_size", "place_k")


class MapLayout:
    """Which projection the map shows (``method``, ``dims``, ``coords``), and the UMAP job computing one."""

    def _key(self, method: str) -> str:
        params = {**self.umap_params, **self._layout_params()} if method == "umap" else None
        return self.cache.key(self.fingerprint, method, self.dims, params)

    def _layout_params(self) -> dict[str, Any]:
        return layout_params(**{k: v for k, v in self.umap_params.items() if k in ("sample_size", "place_k")})

    def cached(self, method: str) -> bool:
        """Whether ``method``'s layout of these points (same dims and UMAP parameters) is in the cache."""
        return self.cache.get(self._key(method)) is not None

    def projection(self, method: str) -> np.ndarray:
        """Coordinates for ``method`` ("pca" computes if needed; "umap" must be cached)."""
        coords = self.cache.get(self._key(method))
        if coords is None and method == "pca":
            coords = pca(self.vectors, self.dims)
            self.cache.put(self._key("pca"), coords, persist=False)  # PCA is cheaper than a disk read
        if coords is None:
            raise LookupError(f"no {method} projection yet")
        return coords

    def show(self, method: str = "pca", dims: int | None = None) -> None:
        """Show a projection; UMAP not yet computed starts in a child process and shows when done.

        Choosing another layout while UMAP computes stops it (its process is terminated)."""
        if dims is not None and dims != self.dims:
            self.dims = dims
            self.selected = []
        if method not in ("pca", "umap"):
            raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")
        if method == "umap" and not self.cached("umap"):
            self.start_umap()
            return
        if method != "umap":
            self.cancel_umap()
        self.method, self.placed = method, None
        self.coords = self.projection(method)
        self.query_xy = self._place_query() if self.highlighted else None
        self._follow_layout()
        self._emit("coords")

    def start_umap(self) -> UmapJob | None:
        """Fit UMAP in a child process (no-op if running); the map switches to it when done."""
        if self.job is not None and self.job.running:
            return self.job
        if self.cached("umap"):
            self.show("umap")
            return None
        key, dims = self._key("umap"), self.dims
        self._job_key = key

        def progress(fraction: float, message: str) -> None:
            self.umap_message = message
            self._emit("progress", fraction, message)

        def current() -> bool:
            return key == self._key("umap") and dims == self.dims  # the data did not change meanwhile

        def partial(rows: np.ndarray, coords: np.ndarray) -> None:
            if current():
                self._show_layout(_with_unplaced(self.n_points, rows, coords), placed_rows=rows)

        def done(job: UmapJob) -> None:
            if isinstance(job.error, LayoutCancelledError):
                self.umap_message = "cancelled"
                self._emit("progress", job.progress, "cancelled")
                return
            if job.error is not None:
                self.error = f"UMAP failed: {describe_error(job.error)}"
                self._emit("progress", job.progress, self.error)
                if self.placed is not None and current():
                    self._show_layout(self.projection("pca"), method="pca")  # the sample's layout alone would mislead
                return
            self.cache.put(key, job.result)
            if current():
                self._show_layout(job.result)

        params = {k: v for k, v in self.umap_params.items() if k in UMAP_OPTIONS}
        init = self.projection("pca")
        try:
            self.job = UmapJob(self.vectors, self.dims, init=init, on_progress=progress, on_done=done, on_partial=partial,
                               **params).start()
        except Exception as exc:
            self.error = describe_error(exc)
            self._emit("progress", 0.0, self.error)
            return None
        return self.job

    def _show_layout(self, coords: np.ndarray, method: str = "umap", placed_rows: np.ndarray | None = None) -> None:
        """Show a layout UMAP's process sent: the whole one, or (``placed_rows``) its fitted sample's while
        the other points are placed (the view hides those; cluster labels wait for the whole layout)."""
        placed = None
        if placed_rows is not None:
            placed = np.zeros(self.n_points, dtype=bool)
            placed[placed_rows] = True
        self.method, self.coords, self.placed = method, coords, placed
        self.query_xy = self._place_query() if self.highlighted else None
        self._follow_layout()
        self._emit("coords")

    def wait_for_umap(self, timeout: float | None = None) -> bool:
        """Wait for the UMAP job (if any) to end; ``False`` if ``timeout`` seconds ran out first."""
        return self.job is None or self.job.wait(timeout)

    def cancel_umap(self) -> None:
        """Stop a UMAP that is computing (its process is terminated and reaped); nothing if none is."""
        if self.job is not None and self.job.running:
            self.job.cancel()


def _with_unplaced(n: int, rows: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """A layout of ``n`` points from the fitted sample's (``rows``, ``coords``); the points not placed yet
    sit at the sample's centre, hidden by the view (``MapState.placed``) until the whole layout comes."""
    out = np.empty((n, coords.shape[1]), dtype=np.float32)
    out[:] = coords.mean(axis=0)
    out[rows] = coords
    return out
