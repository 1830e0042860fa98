"""Projections at scale: PCA and UMAP (sample fit + placement) at 3k, 50k, 200k and 1M points x 384.

Prints, per size: PCA time and peak memory, the captured variance of the PCA
subset fit against the exact components; UMAP's time per stage, its total, and
the worst gap of a main-thread loop ticking every 5 ms while UMAP runs (the
kernel's responsiveness); and the machine's load beside every figure. Also the
first UMAP in a fresh process with an empty numba cache (cold) and again with
the cache filled (warm), and a neighbour-overlap check of sample + placement
against UMAP of every point.

    python bench/bench_projection.py                 # 3k 50k 200k
    python bench/bench_projection.py 3000 1000000    # chosen sizes
    python bench/bench_projection.py --cold          # cold/warm first UMAP at 3k only
    python bench/bench_projection.py --quality       # samples of 10k, 30k and all of 50k
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data

from vecbook.widgets.projection import UmapJob, pca


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def bench_pca(x: np.ndarray) -> None:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        pca(x)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    pca(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  PCA: median {np.median(times):.2f} s (min {min(times):.2f}), peak extra memory {peak / 1e6:.0f} MB"
          f" (data {x.nbytes / 1e6:.0f} MB)  [{load()}]", flush=True)


def captured_variance(x: np.ndarray) -> None:
    """Variance kept by pca()'s subset fit / by the exact top-2 components of all rows."""
    mean = x.mean(axis=0, dtype=np.float64)
    cov = np.zeros((x.shape[1],) * 2)
    for first in range(0, len(x), 50_000):
        block = x[first : first + 50_000] - mean.astype(np.float32)
        cov += block.T @ block
    best = np.linalg.eigh(cov)[1][:, ::-1][:, :2]
    coords = pca(x).astype(np.float64)
    kept = coords.var(axis=0).sum() * len(x)
    exact = np.trace(best.T @ cov @ best)
    print(f"  PCA subset fit keeps {kept / exact:.3f} of the exact top-2 variance  [{load()}]", flush=True)


def idle_wait(seconds: float = 3.0) -> float:
    """The same 5 ms loop with nothing else running: what the machine's load alone costs it."""
    worst, last, end = 0.0, time.perf_counter(), time.perf_counter() + seconds
    while last < end:
        time.sleep(0.005)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    return worst


def bench_umap(x: np.ndarray, **job_args) -> np.ndarray:
    stages: list[tuple[float, str]] = []
    t0 = time.perf_counter()

    def progress(fraction: float, message: str) -> None:
        name = message.split(":")[0]
        if not stages or stages[-1][1] != name:
            stages.append((time.perf_counter() - t0, name))

    job = UmapJob(x, init=pca(x), on_progress=progress, **job_args).start()
    worst, last = {}, time.perf_counter()
    while not job.done:  # the kernel's main thread: how long can it wait for the GIL?
        time.sleep(0.005)
        now = time.perf_counter()
        stage = stages[-1][1] if stages else "starting"
        worst[stage], last = max(worst.get(stage, 0.0), now - last), now
    if job.error is not None:
        raise job.error
    ends = [t for t, _ in stages[1:]] + [time.perf_counter() - t0]
    for (begin, name), end in zip(stages, ends):
        if not name.startswith("done"):
            print(f"    {end - begin:6.1f} s  {name}  (main thread's worst wait {worst.get(name, 0) * 1000:.0f} ms)", flush=True)
    print(f"  UMAP: {job.elapsed:.1f} s in all; main thread's worst wait {max(worst.values(), default=0) * 1000:.0f} ms"
          f" (with no job running: {idle_wait() * 1000:.0f} ms)  [{load()}]", flush=True)
    return job.result


def cold_and_warm() -> None:
    """The first UMAP of 3k points in a new process: empty numba cache, then filled; and umap-learn alone."""
    here = str(Path(__file__).resolve().parent)
    setup = f"import sys, time; sys.path.insert(0, {here!r}); import data; x = data.vectors(3000, 384); t = time.perf_counter();"
    ours = setup + ("from vecbook.widgets.projection import UmapJob, pca; j = UmapJob(x, init=pca(x)).start(); j.wait();"
                    "print(f'{time.perf_counter() - t:.1f}')")
    # The reference: what UmapJob did before (umap-learn's own k-NN and layout, every point, PCA start).
    alone = setup + ("import umap; from vecbook.widgets.projection import pca; p = pca(x).astype('float64');"
                     "p = 10 * (p - p.min(0)) / (p.max(0) - p.min(0)); umap.UMAP(init=p, low_memory=True, metric='cosine')"
                     ".fit_transform(x); print(f'{time.perf_counter() - t:.1f}')")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = (("UmapJob, cold (empty numba cache)", ours), ("UmapJob, warm (numba cache filled)", ours),
                ("umap-learn alone (reference; numba cache filled)", alone))
        for label, code in runs:
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            print(f"  first UMAP of 3k in a new process, {label}: {out.stdout.strip()} s  [{load()}]", flush=True)


def knn_overlap(x: np.ndarray, coords: np.ndarray, probes: int = 1000, k: int = 10) -> float:
    """Mean share of each probe's k nearest in vector space that are among its k nearest on the map."""
    rows = np.random.default_rng(1).choice(len(x), probes, replace=False)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    coords = np.asarray(coords, dtype=np.float32)
    shares = []
    for part in np.array_split(rows, max(1, probes // 100)):  # 100 probes at a time: small temporaries
        near = np.argsort(-(unit[part] @ unit.T), axis=1)[:, 1 : k + 1]
        mapped = np.argsort(((coords[part, None, :] - coords[None, :, :]) ** 2).sum(-1), axis=1)[:, 1 : k + 1]
        shares += [len(set(a) & set(b)) / k for a, b in zip(near, mapped)]
    return float(np.mean(shares))


def quality(n: int = 50_000, samples: tuple[int, ...] = (10_000, 30_000, 50_000)) -> None:
    """Time and neighbour overlap of UMAP on samples of ``n`` points (the last: every point)."""
    x = data.vectors(n, 384)
    print(f"quality at {n:,} (10-NN overlap, vector space vs map; PCA {knn_overlap(x, pca(x)):.3f}):")
    for size in samples:
        coords = bench_umap(x, sample_size=size)
        print(f"  sample {size:,}: 10-NN overlap {knn_overlap(x, coords):.3f}  [{load()}]", flush=True)


def main(argv: list[str]) -> None:
    if "--cold" in argv:
        return cold_and_warm()
    if "--quality" in argv:
        return quality()
    sizes = [int(a) for a in argv if a.isdigit()] or [3_000, 50_000, 200_000]
    for n in sizes:
        x = data.vectors(n, 384)
        print(f"{n:,} x 384:  [{load()}]", flush=True)
        bench_pca(x)
        if n >= 200_000:
            captured_variance(x)
        bench_umap(x)


if __name__ == "__main__":
    main(sys.argv[1:])
