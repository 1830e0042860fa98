"""How long the kernel's main thread waits while a UMAP layout runs (a fresh process, as a new kernel).

    python bench/bench_umap_responsiveness.py [--sizes 3000,50000] [--dims 384]

The main thread stands in for the kernel answering a cell: every 20 ms it wakes
up and does a little Python work (what ipykernel does for an ``1+1`` cell is a
few ms of Python); each wake-up's lateness is how long a cell would wait for
the GIL. Printed per size: the worst and the 99th-percentile delay while the
layout runs, against the same loop with nothing running (the reference), and
whether umap/numba were imported into this process. The target is 200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, d)).astype(np.float32)
    return (centres[rng.integers(0, 40, n)] + 0.4 * rng.normal(size=(n, d))).astype(np.float32)


def delays(until, period: float = 0.02) -> list[float]:
    """Lateness (s) of each wake-up of a ``period`` loop, until ``until()`` is true."""
    out = []
    while not until():
        t = time.perf_counter()
        time.sleep(period)
        sum(i * i for i in range(2000))  # a cell's worth of Python
        out.append(time.perf_counter() - t - period)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="3000,50000")
    parser.add_argument("--dims", type=int, default=384)
    args = parser.parse_args()
    from vecbook.widgets.projection import UmapJob, pca

    print(f"load {open('/proc/loadavg').read().split()[:3]}, pid {os.getpid()}")
    for n in [int(s) for s in args.sizes.split(",")]:
        x = clustered(n, args.dims)
        init = pca(x)
        start = time.perf_counter()
        ref = delays(lambda: time.perf_counter() - start > 2.0)
        job = UmapJob(x, init=init).start()
        t = time.perf_counter()
        during = delays(lambda: job.done)
        took = time.perf_counter() - t
        assert job.error is None, job.error
        p99 = sorted(during)[int(0.99 * (len(during) - 1))]
        print(f"{n:>9,} x {args.dims}: UMAP {took:5.1f} s; cell delay while it runs: worst {1000 * max(during):6.0f} ms, "
              f"p99 {1000 * p99:5.0f} ms, median {1000 * statistics.median(during):4.0f} ms "
              f"(idle reference: worst {1000 * max(ref):4.0f} ms); target 200 ms, ratio worst/target {max(during) / 0.2:.2f}; "
              f"umap imported here: {'umap' in sys.modules}, numba: {'numba' in sys.modules}; "
              f"load {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
