"""What every peer driver shares (runs inside the peer's own venv: numpy and the peer only).

The parent writes ``vectors.npy``, ``queries.npy`` and ``metadata.json`` to a
folder; a driver loads them, runs the workload and prints one JSON line.
Searches are timed query by query, taking turns with a bare numpy search of the
same query in the same process, so a ratio to numpy means the same thing in
every process however busy the machine is.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

K = 10


def load(folder: str):
    folder = Path(folder)
    vectors = np.load(folder / "vectors.npy")
    queries = np.load(folder / "queries.npy")
    metas = json.loads((folder / "metadata.json").read_text())
    return vectors, queries, metas


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def written_bytes() -> int:
    """Bytes this process has sent to files so far (``write_bytes`` of ``/proc/self/io``: page cache dirtied)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("write_bytes:")).split()[1])


def dir_bytes(path) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def numpy_search(matrix: np.ndarray):
    norms = np.linalg.norm(matrix, axis=1)

    def search(q):
        scores = (q[None, :] @ matrix.T)[0]
        scores /= norms * np.linalg.norm(q)
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    return search


def timed_searches(search, reference, queries: np.ndarray, count: int) -> dict:
    """Per-query times of ``search(i)`` and ``reference(q)`` taking turns; the ids found for each query."""
    search(0)
    reference(queries[0])
    mine, ref, found = [], [], []
    for i in range(count):
        q = queries[i % len(queries)]
        pair = [("mine", lambda: search(i)), ("ref", lambda: reference(q))]
        if i % 2:
            pair.reverse()
        for name, fn in pair:
            t = time.perf_counter()
            out = fn()
            (mine if name == "mine" else ref).append(time.perf_counter() - t)
            if name == "mine":
                found.append(out)
    ratios = [a / b for a, b in zip(mine, ref)]
    return {"median_ms": statistics.median(mine) * 1e3, "min_ms": min(mine) * 1e3, "max_ms": max(mine) * 1e3,
            "ref_ms": statistics.median(ref) * 1e3, "ratio_vs_numpy": statistics.median(ratios), "ids": found}


def emit(result: dict) -> None:
    print(json.dumps(result))
    sys.stdout.flush()
