"""The UMAP layout, inside the child process :class:`.projection.UmapJob` starts (spawn, never fork).

Why a process: importing umap-learn and numba holds the GIL for up to ~0.6 s
and their compiled loops hold it in between, so a thread made the kernel miss
cells; here the kernel never imports them. The child reads the vectors from a
``.npy`` file (memory-mapped), fits UMAP on a sample, places the rest
(:mod:`.layout_umap`), writes the layout to another ``.npy`` file and tells the
parent through a pipe: ``("progress", fraction, message)``, ``("partial", rows,
coords)``, ``("done", seconds)``, ``("missing", package, extra)`` or ``("error", exception)``. It exits by
itself if its parent goes away (a kernel killed without cleaning up).
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import LayoutWorkerError, MissingDependencyError
from . import _deps
from .layout_numba import cache_umap_code, umap_code_cached
from .layout_umap import NeighbourIndex, place, sample_indices

__all__ = ["COMPILE_SECONDS", "FIT_MS_PER_POINT", "PLACE_MS_PER_POINT", "run"]

FIT_MS_PER_POINT, PLACE_MS_PER_POINT = 3.0, 0.1  # measured at 1M; they only weigh the stages on the progress bar
# The first UMAP of 3k points in a new process took 53 s with numba's cache empty and 9 s with it filled
# (load 6.7 on 2 cores, bench/bench_projection.py --cold): compiling is most of a first run.
COMPILE_SECONDS = "20-60"


def run(conn, vectors_path: str, init_path: str | None, result_path: str, dims: int, params: dict[str, Any],
        sample_size: int, place_k: int, parent_pid: int) -> None:
    """The child's entry point: lay out the vectors in ``vectors_path``, write ``result_path``, report on ``conn``."""
    _exit_with_parent(parent_pid)
    _yield_to_the_kernel()
    start = time.perf_counter()

    def report(fraction: float, message: str) -> None:
        conn.send(("progress", float(fraction), message))

    try:
        vectors = np.load(vectors_path, mmap_mode="r")
        init = np.load(init_path) if init_path else None
        sample = sample_indices(len(vectors), sample_size)
        coords = fit_and_place(vectors, sample, dims, init, params, place_k, report,
                               lambda rows, xy: conn.send(("partial", rows, xy)))
        np.save(result_path, coords, allow_pickle=False)
        conn.send(("done", time.perf_counter() - start))
    except MissingDependencyError as exc:  # its constructor takes the package and the extra: send those
        conn.send(("missing", exc.package, exc.extra))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent, typed
        conn.send(("error", _portable(exc)))
    finally:
        conn.close()


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (its type kept), else a LayoutWorkerError naming it."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if type(copy) is type(exc) and str(copy) == str(exc):
            return copy
    except Exception:
        pass
    return LayoutWorkerError(f"the UMAP layout process failed: {type(exc).__name__}: {exc}")


def _yield_to_the_kernel() -> None:
    """A lower CPU priority: on busy cores the scheduler then runs the kernel first (measured at 50k, load 6
    on 2 cores: cells waited up to 0.4 s for a core at equal priority)."""
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass


def _exit_with_parent(parent_pid: int) -> None:
    """Leave when the parent is gone (its pipe end may outlive it in a grandchild; the pid never lies)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, name="vecbook-umap-watch", daemon=True).start()


def fit_share(fitted: int, placed: int) -> float:
    """The part of the progress bar for fitting, by the per-point cost of each stage measured here."""
    fit, rest = fitted * FIT_MS_PER_POINT, placed * PLACE_MS_PER_POINT
    return fit / (fit + rest) if fit + rest else 1.0


def fit_and_place(vectors: np.ndarray, sample: np.ndarray, dims: int, init: np.ndarray | None, params: dict[str, Any],
                  place_k: int, report: Callable[[float, str], None],
                  partial: Callable[[np.ndarray, np.ndarray], None]) -> np.ndarray:
    """UMAP of ``vectors[sample]``, then every other point placed beside its nearest sampled points."""
    n, m = len(vectors), len(sample)
    rest = n - m
    share = fit_share(m, rest)
    what = f"{m:,} sampled points" if rest else f"{m:,} points"
    k = max(2, min(params["n_neighbors"], m - 1))
    report(0.01, f"finding the {k} nearest neighbours of {what}")
    index = NeighbourIndex(np.asarray(vectors[sample]), params["metric"])
    start = _scaled_init(init, sample, dims) if init is not None and len(init) == n else "spectral"
    coords = _fit(index.graph(k), index.points, start, dims, params, k, what, share, report)
    if not rest:
        return coords
    partial(sample, coords)
    out = np.empty((n, dims), dtype=np.float32)
    out[sample] = coords
    others = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    report(share, f"placing the other {rest:,} points beside their nearest sampled points")
    for first, placed in place(index, coords, vectors, others, k=place_k):
        last = first + len(placed)
        out[others[first:last]] = placed
        report(share + (1 - share) * last / rest, f"placing the other {rest:,} points: {last:,} placed")
    return out


class _EpochProgress:
    """Stands in for umap's tqdm so the epochs loop reports to a callback."""

    report: Callable[[int, int], None] | None = None

    def __init__(self, iterable=None, **kwargs: Any):
        self.iterable = iterable if iterable is not None else ()

    def __iter__(self):
        items = list(self.iterable)
        for i, item in enumerate(items):
            if self.report is not None:
                self.report(i, len(items))
            yield item
        if self.report is not None:
            self.report(len(items), len(items))


def _fit(knn, points: np.ndarray, init, dims: int, params: dict[str, Any], k: int, what: str, share: float,
         report: Callable[[float, str], None]) -> np.ndarray:
    if "umap.umap_" not in sys.modules:
        report(0.05 * share, "importing umap-learn in the layout process (a few seconds; the first UMAP in this "
               f"environment also compiles pynndescent's code, {COMPILE_SECONDS} s in all)")
    umap = _deps.require("umap", "UMAP projections")
    layouts = __import__("umap.layouts", fromlist=["tqdm"])
    cache_umap_code()
    cached = umap_code_cached()
    report(0.1 * share, "loading umap's compiled code from numba's cache" if cached is not False else
           f"compiling umap's numba code (first UMAP in this environment, {COMPILE_SECONDS} s in all; "
           "kept on disk for the next kernels)")
    options = {key: v for key, v in params.items() if v is not None}
    options["n_neighbors"] = k
    # random_state: the same layout for the same data; it also means one numba thread, which here was
    # 2-3x faster than two (OpenMP's barriers on 2 busy cores) and leaves the kernel a core.
    warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)  # we never call transform
    model = umap.UMAP(n_components=dims, init=init, low_memory=True, verbose=False, random_state=0, n_jobs=1,
                      precomputed_knn=knn, tqdm_kwds={"disable": False}, **options)

    def epochs(i: int, total: int) -> None:
        if i == 0 or i == total or i % max(1, total // 50) == 0:
            report(share * (0.15 + 0.85 * i / max(total, 1)), f"fitting {what}: epoch {i}/{total}")

    # umap's epoch loop has no callback; its progress bar is the only hook, so swap it for ours (this process only).
    layouts.tqdm = type("_Progress", (_EpochProgress,), {"report": staticmethod(epochs)})
    return np.asarray(model.fit_transform(points), dtype=np.float32)


def _scaled_init(init: np.ndarray, rows: np.ndarray, dims: int) -> np.ndarray:
    start = np.asarray(init, dtype=np.float64)[rows, :dims]
    if start.shape[1] < dims:
        start = np.pad(start, ((0, 0), (0, dims - start.shape[1])))
    span = np.ptp(start, axis=0)
    span[span == 0] = 1.0
    # UMAP expects a start of about this size; ties would break its spectral fallback.
    start = 10.0 * (start - start.min(axis=0)) / span
    return start + np.random.default_rng(0).normal(scale=1e-4, size=start.shape)
