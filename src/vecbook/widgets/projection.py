"""2-D/3-D projections of a workspace's vectors: PCA at once, UMAP in a thread, both cached.

Projections are keyed by a fingerprint of the workspace's ids and vectors, so
reopening a map on unchanged data is instant (from memory in this process, or
from ``cache_dir`` across processes), and any change to the data computes anew.
UMAP fits at most ``SAMPLE_SIZE`` points and places the others beside their
nearest sampled neighbours (:mod:`.layout_umap`), so a million points take
minutes; it runs in a worker thread, names each stage through a callback, and
keeps umap's compiled numba code on disk (:mod:`.layout_numba`), so only the
first UMAP in an environment compiles.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from . import _deps
from .layout_numba import cache_umap_code, umap_code_cached
from .layout_umap import PLACE_K, NeighbourIndex, place, sample_indices

__all__ = ["ProjectionCache", "UmapJob", "default_cache_dir", "fingerprint", "pca"]


def fingerprint(ids: Sequence[str], vectors: np.ndarray) -> str:
    """A digest of ids (in order) and vectors: equal data gives an equal key in every process.

    SHA-256: 2-3x faster than BLAKE2 here on large vector buffers (CPUs with SHA extensions).
    """
    digest = hashlib.sha256()
    digest.update(f"{len(ids)}x{vectors.shape[1] if vectors.ndim == 2 else 0}\n".encode())
    digest.update("\0".join(ids).encode("utf-8", "surrogatepass"))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    digest.update(memoryview(vectors).cast("B") if vectors.size else b"")
    return digest.hexdigest()[:32]


def pca(vectors: np.ndarray, dims: int = 2, fit_rows: int = 50_000) -> np.ndarray:
    """Project rows onto their top ``dims`` principal components (float32, the same for the same data).

    The components come from the covariance of at most ``fit_rows`` rows (a
    fixed random subset beyond that): for embedding sizes (d of a few hundred)
    the d x d covariance is cheaper than a randomized SVD over all rows, and on
    1M x 384 clustered vectors a 50k subset's top two directions kept 98 % of
    the variance the exact ones capture (bench/bench_projection.py). Every row
    is projected; no centred copy of the data is made.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    out = np.zeros((n, dims), dtype=np.float32)
    if n < 2 or x.ndim != 2 or x.shape[1] == 0:
        return out
    with _one_blas_thread():
        mean = x.mean(axis=0, dtype=np.float64)
        rows = np.arange(n) if n <= fit_rows else np.sort(np.random.default_rng(0).choice(n, fit_rows, replace=False))
        cov = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
        for first in range(0, len(rows), _CHUNK):  # chunks: the fit never copies more than _CHUNK rows
            block = x[rows[first : first + _CHUNK]] - mean.astype(np.float32)
            cov += block.T @ block
        top = _top_eigenvectors(cov, min(dims, x.shape[1]))
        top *= np.where(top[np.abs(top).argmax(axis=0), range(top.shape[1])] < 0, -1.0, 1.0)
        top = top.astype(np.float32)
        out[:, : top.shape[1]] = x @ top - mean.astype(np.float32) @ top  # = (x - mean) @ top
    return out


_CHUNK = 20_000


def _one_blas_thread():
    """BLAS on one thread: ~60 ms either way for PCA here, but OpenBLAS's worker threads can take
    seconds when other processes keep the cores busy (measured: 0.05-2.0 s for the same 50k map)."""
    try:
        from threadpoolctl import (
            threadpool_limits,  # comes with umap-learn's scikit-learn
        )
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _top_eigenvectors(cov: np.ndarray, k: int) -> np.ndarray:
    """The eigenvectors of the ``k`` largest eigenvalues of a symmetric matrix, largest first."""
    _, vecs = np.linalg.eigh(cov.astype(np.float64))  # ~20 ms at d = 384 (scipy's subset eigh costs its import)
    return np.ascontiguousarray(vecs[:, ::-1][:, :k])


def default_cache_dir() -> Path:
    """``$VECBOOK_CACHE_DIR`` or ``$XDG_CACHE_HOME/vecbook`` (``~/.cache/vecbook``), plus ``/projections``."""
    root = os.environ.get("VECBOOK_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vecbook")
    return Path(root) / "projections"


class ProjectionCache:
    """Projections by key, in memory (LRU, shared by every map in the process) and optionally on disk.

    ``cache_dir=None`` uses :func:`default_cache_dir`; ``cache_dir=False`` keeps to memory.
    """

    _memory: OrderedDict[str, np.ndarray] = OrderedDict()
    _lock = threading.Lock()
    max_items = 32

    def __init__(self, cache_dir: str | os.PathLike | bool | None = None):
        self.cache_dir = None if cache_dir is False else Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir()

    @staticmethod
    def key(data_fingerprint: str, method: str, dims: int, params: dict[str, Any] | None = None) -> str:
        extra = ",".join(f"{k}={params[k]}" for k in sorted(params or {}))
        return hashlib.blake2b(f"{data_fingerprint}|{method}|{dims}|{extra}".encode(), digest_size=16).hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self.cache_dir is not None:
            path = self.cache_dir / f"{key}.npy"
            try:
                coords = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                return None
            self._remember(key, coords)
            return coords
        return None

    def put(self, key: str, coords: np.ndarray, persist: bool = True) -> None:
        coords = np.ascontiguousarray(coords, dtype=np.float32)
        self._remember(key, coords)
        if persist and self.cache_dir is not None:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = self.cache_dir / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp.npy"
                np.save(tmp, coords, allow_pickle=False)
                os.replace(tmp, self.cache_dir / f"{key}.npy")
            except OSError:
                pass  # a read-only cache dir only costs a recomputation next time

    def _remember(self, key: str, coords: np.ndarray) -> None:
        with self._lock:
            self._memory[key] = coords
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)

    @classmethod
    def clear_memory(cls) -> None:
        with cls._lock:
            cls._memory.clear()


LAYOUT_VERSION = "sample+place/1"  # changes whenever the same inputs would give another layout
# UMAP fits this many points. On 50k x 384 (bench/bench_projection.py --quality, load 5-7 on 2 cores) samples of
# 10k / 30k / all 50k took 17 / 24 / 31 s, and the map's 10-NN overlap with vector space was 0.30 / 0.38 / 0.45.
SAMPLE_SIZE = 30_000
FIT_MS_PER_POINT, PLACE_MS_PER_POINT = 3.0, 0.1  # measured at 1M; they only weigh the stages on the progress bar
# The first UMAP of 3k points in a new process took 53 s with numba's cache empty and 9 s with it filled
# (load 6.7 on 2 cores, bench/bench_projection.py --cold): compiling is most of a first run.
COMPILE_SECONDS = "20-60"
_umap_lock = threading.Lock()  # one fit at a time: two would only share 2 cores anyway
_umap_warm = False  # a fit finished in this process, so numba's code is compiled


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


def _fit_share(fitted: int, placed: int) -> float:
    """The part of the progress bar for fitting, by the per-point cost of each stage measured here."""
    fit, rest = fitted * FIT_MS_PER_POINT, placed * PLACE_MS_PER_POINT
    return fit / (fit + rest) if fit + rest else 1.0


def layout_params(sample_size: int = SAMPLE_SIZE, place_k: int = PLACE_K) -> dict[str, Any]:
    """What besides the data and UMAP's own parameters shapes a UMAP layout (part of its cache key)."""
    return {"layout": LAYOUT_VERSION, "sample_size": sample_size, "place_k": place_k}


class UmapJob:
    """UMAP of ``vectors`` in a daemon thread: fitted on a sample, the other points placed beside their neighbours.

    Up to ``sample_size`` points UMAP lays out every point. Beyond, it fits a
    fixed random sample of that size, reports it through ``on_partial(indices,
    coords)`` (row numbers into ``vectors`` and their layout, shown while the
    rest is placed), then puts every other point at the weighted mean of the
    layout of its ``place_k`` nearest sampled points in vector space
    (:mod:`.layout_umap`). ``on_progress(fraction, message)`` names each stage
    as it starts; ``on_done(job)`` runs once it ends (``job.result`` or
    ``job.error`` set). Everything runs in the worker thread. ``init`` (e.g.
    the PCA coordinates) seeds the layout, which keeps the map's orientation;
    with it the result is the same for the same data.
    """

    def __init__(self, vectors: np.ndarray, dims: int = 2, init: np.ndarray | None = None,
                 on_progress: Callable[[float, str], None] | None = None, on_done: Callable[[UmapJob], None] | None = None,
                 n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine", n_epochs: int | None = None,
                 sample_size: int = SAMPLE_SIZE, place_k: int = PLACE_K,
                 on_partial: Callable[[np.ndarray, np.ndarray], None] | None = None):
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.dims = dims
        self.init = init
        self.params = {"n_neighbors": n_neighbors, "min_dist": min_dist, "metric": metric, "n_epochs": n_epochs}
        self.sample_size = sample_size
        self.place_k = place_k
        self.on_progress = on_progress
        self.on_partial = on_partial
        self.on_done = on_done
        self.progress = 0.0
        self.message = "queued"
        self.partial: tuple[np.ndarray, np.ndarray] | None = None
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.elapsed: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def cache_params(self) -> dict[str, Any]:
        """What besides the data and UMAP's parameters shapes the layout: add it to the cache key."""
        return layout_params(self.sample_size, self.place_k)

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def start(self) -> UmapJob:
        if importlib.util.find_spec("umap") is None:  # importing umap takes seconds: only look here
            raise MissingDependencyError("umap-learn", "notebook", feature="UMAP projections")
        self._thread = threading.Thread(target=self._run, name="vecbook-umap", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _report(self, fraction: float, message: str) -> None:
        self.progress, self.message = max(fraction, self.progress), message
        if self.on_progress is not None:
            try:
                self.on_progress(self.progress, message)
            except Exception:
                pass  # a broken display must not kill the fit

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            n = len(self.vectors)
            if n <= self.dims + 1:
                raise ValueError(f"UMAP needs more than {self.dims + 1} points, the map has {n}")
            self._report(0.0, "waiting for another UMAP fit" if _umap_lock.locked() else "starting")
            with _umap_lock:
                sample = sample_indices(n, self.sample_size)
                self.result = self._fit_and_place(sample)
            self.elapsed = time.perf_counter() - start
            self._report(1.0, f"done in {self.elapsed:.1f} s")
        except BaseException as exc:  # reported to the UI, never raised in a thread nobody joins
            self.error = exc
            self.elapsed = time.perf_counter() - start
            self._report(self.progress, f"failed: {type(exc).__name__}: {exc}")
        finally:
            if self.on_done is not None:  # before done is set, so wait() returns with the result shown
                try:
                    self.on_done(self)
                except Exception:
                    pass
            self._done.set()

    def _fit_and_place(self, sample: np.ndarray) -> np.ndarray:
        n, m = len(self.vectors), len(sample)
        rest = n - m
        share = _fit_share(m, rest)  # of the progress bar, by the measured cost of each stage
        what = f"{m:,} sampled points" if rest else f"{m:,} points"
        k = max(2, min(self.params["n_neighbors"], m - 1))
        self._report(0.01, f"finding the {k} nearest neighbours of {what}")
        index = NeighbourIndex(self.vectors[sample], self.params["metric"])
        coords = self._fit(index.graph(k), index.points, sample, k, what, share)
        if not rest:
            return coords
        self.partial = (sample, coords)
        if self.on_partial is not None:
            try:
                self.on_partial(sample, coords)
            except Exception:
                pass
        out = np.empty((n, self.dims), dtype=np.float32)
        out[sample] = coords
        others = np.setdiff1d(np.arange(n), sample, assume_unique=True)
        self._report(share, f"placing the other {rest:,} points beside their nearest sampled points")
        for first, placed in place(index, coords, self.vectors, others, k=self.place_k):
            last = first + len(placed)
            out[others[first:last]] = placed
            self._report(share + (1 - share) * last / rest, f"placing the other {rest:,} points: {last:,} placed")
        return out

    def _fit(self, knn: tuple[np.ndarray, np.ndarray], points: np.ndarray, sample: np.ndarray, k: int, what: str,
             share: float) -> np.ndarray:
        global _umap_warm
        if "umap.umap_" not in sys.modules:
            self._report(0.05 * share, "importing umap-learn (first UMAP in this kernel, a few seconds; "
                         f"the first in this environment also compiles pynndescent's code, {COMPILE_SECONDS} s in all)")
        umap = _deps.require("umap", "UMAP projections")
        layouts = __import__("umap.layouts", fromlist=["tqdm"])
        cache_umap_code()
        if not _umap_warm:
            cached = umap_code_cached()
            self._report(0.1 * share, "loading umap's compiled code from numba's cache" if cached else
                         f"compiling umap's numba code (first UMAP in this environment, {COMPILE_SECONDS} s in all; "
                         "kept on disk for the next kernels)")
        init = self._scaled_init(sample) if self.init is not None and len(self.init) == len(self.vectors) else "spectral"
        params = {key: v for key, v in self.params.items() if v is not None}
        params["n_neighbors"] = k
        # random_state: the same layout for the same data; it also means one numba thread, which here was
        # 2-3x faster than two (OpenMP's barriers on 2 busy cores) and leaves the kernel a core.
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)  # we never call transform
        model = umap.UMAP(n_components=self.dims, init=init, low_memory=True, verbose=False, random_state=0, n_jobs=1,
                          precomputed_knn=knn, tqdm_kwds={"disable": False}, **params)

        def epochs(i: int, total: int) -> None:
            if i == 0 or i == total or i % max(1, total // 50) == 0:
                self._report(share * (0.15 + 0.85 * i / max(total, 1)), f"fitting {what}: epoch {i}/{total}")

        original = getattr(layouts, "tqdm", None)
        progress = type("_Progress", (_EpochProgress,), {"report": staticmethod(epochs)})
        # umap's epoch loop has no callback; its progress bar is the only hook, so swap it for ours.
        layouts.tqdm = progress
        try:
            coords = model.fit_transform(points)
        finally:
            if original is not None:
                layouts.tqdm = original
        _umap_warm = True
        return np.asarray(coords, dtype=np.float32)

    def _scaled_init(self, rows: np.ndarray) -> np.ndarray:
        init = np.asarray(self.init, dtype=np.float64)[rows, : self.dims]
        if init.shape[1] < self.dims:
            init = np.pad(init, ((0, 0), (0, self.dims - init.shape[1])))
        span = np.ptp(init, axis=0)
        span[span == 0] = 1.0
        # UMAP expects a start of about this size; ties would break its spectral fallback.
        init = 10.0 * (init - init.min(axis=0)) / span
        return init + np.random.default_rng(0).normal(scale=1e-4, size=init.shape)
