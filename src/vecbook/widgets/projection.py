"""2-D/3-D projections of a workspace's vectors: PCA at once, UMAP in a child process, both cached.

Projections are keyed by a fingerprint of the workspace's ids and vectors, so
reopening a map on unchanged data is instant (from memory in this process, or
from ``cache_dir`` across processes), and any change to the data computes anew.
UMAP fits at most ``SAMPLE_SIZE`` points and places the others beside their
nearest sampled neighbours (:mod:`.layout_umap`), so a million points take
minutes; it runs in a child process (so the kernel never imports umap or
numba, whose import and compiled loops hold the GIL), names each stage through
a callback, and keeps umap's compiled numba code on disk
(:mod:`.layout_numba`), so only the first UMAP in an environment compiles.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import multiprocessing
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._file_writes import write_all
from ..errors import LayoutCancelledError, LayoutWorkerError, MissingDependencyError
from . import layout_process
from .layout_umap import PLACE_K

__all__ = ["ProjectionCache", "UmapJob", "default_cache_dir", "fingerprint", "pca"]


def fingerprint(ids: Sequence[str], vectors: np.ndarray) -> str:
    """A digest of ids (in order) and vectors: equal data gives an equal key in every process.

    SHA-256 of the shape, the ids, and one 64-bit checksum per row of vectors (not of the vectors'
    bytes: hashing 1.5 GB took 1.0-1.2 s at 1,000,000 x 384, the checksums 0.18 s). A row's
    checksum is the sum, modulo 2**64, of its 8-byte words each times a distinct odd constant: a
    change to any single value of any row changes it (an odd factor is invertible modulo 2**64),
    and so do values swapped within a row or rows swapped between ids. Two or more changes in
    one row could cancel out only by arithmetic coincidence (about 2**-64); real re-embedded
    vectors do not do that, and a cached layout reused by such a coincidence only shows an old
    layout, never wrong data (the points, colours and details are read from the store).
    """
    digest = hashlib.sha256()
    digest.update(f"{len(ids)}x{vectors.shape[1] if vectors.ndim == 2 else 0}\n".encode())
    digest.update("\0".join(ids).encode("utf-8", "surrogatepass"))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.size:
        digest.update(_row_checksums(vectors).tobytes())
    return digest.hexdigest()[:32]


def _row_checksums(vectors: np.ndarray, chunk: int = 4_096) -> np.ndarray:
    """Per row: sum of its words times distinct odd constants, modulo 2**64 (see :func:`fingerprint`)."""
    words = vectors.view(np.uint64) if vectors.shape[1] % 2 == 0 else vectors.view(np.uint32)
    weights = (np.arange(words.shape[1], dtype=np.uint64) * np.uint64(2) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    out = np.empty(len(words), dtype=np.uint64)
    for first in range(0, len(words), chunk):  # a small temporary: chunks stay in the CPU's cache
        out[first : first + chunk] = (words[first : first + chunk] * weights).sum(axis=1, dtype=np.uint64)
    return out


def pca(vectors: np.ndarray, dims: int = 2, fit_rows: int = 50_000) -> np.ndarray:
    """Project rows onto their top ``dims`` principal components (float32, the same for the same data).

    The components come from at most ``fit_rows`` rows (a fixed random subset
    beyond that): for embedding sizes (d of a few hundred) the d x d covariance is cheaper
    than a randomized SVD over all rows, and on 1M x 384 clustered vectors a 50k subset's
    top two directions kept 98 % of the variance the exact ones capture
    (bench/bench_projection.py). Every row is then projected in one product, the only pass
    over all of them (the projections are centred afterwards: no mean over every vector, no
    centred copy of the data).
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    out = np.zeros((n, dims), dtype=np.float32)
    if n < 2 or x.ndim != 2 or x.shape[1] == 0:
        return out
    with _one_blas_thread():
        rows = np.arange(n) if n <= fit_rows else np.sort(np.random.default_rng(0).choice(n, fit_rows, replace=False))
        mean = np.zeros(x.shape[1], dtype=np.float64)
        for first in range(0, len(rows), _CHUNK):
            mean += x[rows[first : first + _CHUNK]].sum(axis=0, dtype=np.float64)
        mean /= len(rows)
        cov = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
        for first in range(0, len(rows), _CHUNK):  # chunks: the fit never copies more than _CHUNK rows
            block = x[rows[first : first + _CHUNK]] - mean.astype(np.float32)
            cov += block.T @ block
        top = _top_eigenvectors(cov, min(dims, x.shape[1]))
        top *= np.where(top[np.abs(top).argmax(axis=0), range(top.shape[1])] < 0, -1.0, 1.0)
        top = top.astype(np.float32)
        projected = x @ top
        projected -= projected.mean(axis=0, dtype=np.float64).astype(np.float32)  # = (x - the mean of all rows) @ top
        out[:, : top.shape[1]] = projected
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
_umap_lock = threading.Lock()  # one fit at a time: two would only share 2 cores anyway
_COPY_ROWS = 2_048  # rows written to the child's file per call (3 MB at d = 384)
_POLL = 0.1  # seconds between looks at the child when it says nothing


def layout_params(sample_size: int = SAMPLE_SIZE, place_k: int = PLACE_K) -> dict[str, Any]:
    """What besides the data and UMAP's own parameters shapes a UMAP layout (part of its cache key)."""
    return {"layout": LAYOUT_VERSION, "sample_size": sample_size, "place_k": place_k}


class UmapJob:
    """UMAP of ``vectors`` in a child process (started with ``spawn``), watched by a daemon thread.

    The kernel never imports umap-learn or numba: the child does the whole fit
    (:mod:`.layout_process`) and the thread here only copies the vectors to a
    file for it and relays its reports. Up to ``sample_size`` points UMAP lays
    out every point. Beyond, it fits a fixed random sample of that size,
    reports it through ``on_partial(indices, coords)`` (row numbers into
    ``vectors`` and their layout, shown while the rest is placed), then puts
    every other point at the weighted mean of the layout of its ``place_k``
    nearest sampled points in vector space (:mod:`.layout_umap`).
    ``on_progress(fraction, message)`` names each stage as it starts;
    ``on_done(job)`` runs once it ends (``job.result`` or ``job.error`` set:
    a ``LayoutWorkerError`` if the child died, ``LayoutCancelledError`` after
    :meth:`cancel`, ``MissingDependencyError`` without umap-learn). Callbacks
    run in the watching thread. ``init`` (e.g. the PCA coordinates) seeds the
    layout, which keeps the map's orientation; with it the result is the same
    for the same data.
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
        self.process = None  # the child while it runs (multiprocessing.Process)
        self._cancelled = threading.Event()
        self._process_lock = threading.Lock()
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

    def cancel(self, timeout: float | None = 10.0) -> bool:
        """Stop the fit: the child process is terminated (killed if it lingers); True once the job has ended."""
        self._cancelled.set()
        with self._process_lock:
            _stop(self.process)
        return self._done.wait(timeout) if self._thread is not None else True

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
            self._report(0.0, "waiting for another UMAP fit" if _umap_lock.locked() else "starting the layout process")
            with _umap_lock, tempfile.TemporaryDirectory(prefix="vecbook-umap-") as tmp:
                self.result = self._in_child(Path(tmp))
            self.elapsed = time.perf_counter() - start
            self._report(1.0, f"done in {self.elapsed:.1f} s")
        except BaseException as exc:  # reported to the UI, never raised in a thread nobody joins
            self.error = exc
            self.elapsed = time.perf_counter() - start
            what = "cancelled" if isinstance(exc, LayoutCancelledError) else "failed"
            self._report(self.progress, f"{what}: {type(exc).__name__}: {exc}")
        finally:
            if self.on_done is not None:  # before done is set, so wait() returns with the result shown
                try:
                    self.on_done(self)
                except Exception:
                    pass
            self._done.set()

    def _in_child(self, tmp: Path) -> np.ndarray:
        vectors_path, result_path = tmp / "vectors.npy", tmp / "layout.npy"
        _write_npy(vectors_path, self.vectors, self._cancelled)
        init_path = None
        if self.init is not None:
            init_path = tmp / "init.npy"
            np.save(init_path, np.asarray(self.init, dtype=np.float32), allow_pickle=False)
        context = multiprocessing.get_context("spawn")  # never fork a kernel: it has threads
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=layout_process.run, name="vecbook-umap", daemon=True,
                                  args=(send, str(vectors_path), init_path and str(init_path), str(result_path), self.dims,
                                        self.params, self.sample_size, self.place_k, os.getpid()))
        with self._process_lock:
            if self._cancelled.is_set():
                raise LayoutCancelledError("UMAP cancelled before it started")
            process.start()
            self.process = process
        send.close()  # the child holds the only writing end: its exit ends the pipe
        try:
            while True:
                if not receive.poll(_POLL):
                    if process.is_alive():
                        continue
                    if not receive.poll(0):
                        break
                try:
                    kind, *body = receive.recv()
                except (EOFError, OSError):
                    break
                if kind == "progress":
                    self._report(*body)
                elif kind == "partial":
                    self._partial(*body)
                elif kind == "done":
                    return np.load(result_path, allow_pickle=False)
                elif kind == "missing":
                    raise MissingDependencyError(*body, feature="UMAP projections")
                elif kind == "error":
                    raise body[0]
            process.join(5)
            if self._cancelled.is_set():
                raise LayoutCancelledError("UMAP cancelled: its process was stopped")
            raise LayoutWorkerError(f"the UMAP layout process (pid {process.pid}) died without a result "
                                    f"(exit code {process.exitcode}); perhaps out of memory")
        finally:
            receive.close()
            with self._process_lock:
                _stop(process)
                self.process = None

    def _partial(self, rows: np.ndarray, coords: np.ndarray) -> None:
        self.partial = (rows, coords)
        if self.on_partial is not None:
            try:
                self.on_partial(rows, coords)
            except Exception:
                pass


def _write_npy(path: Path, array: np.ndarray, cancelled: threading.Event) -> None:
    """``array`` as a ``.npy`` file, a few MB at a time (by ``write_all``, a megabyte per call): the GIL is
    released while the kernel writes.

    Copying into a fresh memory map instead took each page fault with the GIL held: at 1M x 384
    the kernel's thread waited up to 0.78 s at once and the copy took 1.4-5.4 s (here 0.36 s, 3 ms).
    """
    with open(path, "wb") as out:
        header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
        np.lib.format.write_array_header_1_0(out, header)  # rows follow in C order, whatever the array's layout
        out.flush()
        for first in range(0, len(array), _COPY_ROWS):
            if cancelled.is_set():
                break
            write_all(out.fileno(), np.ascontiguousarray(array[first : first + _COPY_ROWS]))


def _stop(process) -> None:
    """Terminate a child process and reap it (killed if it ignores SIGTERM): no orphan, no zombie."""
    if process is None or process.pid is None:
        return
    if process.is_alive():
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
    process.join(5)
