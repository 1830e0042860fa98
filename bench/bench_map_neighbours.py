"""The map's neighbour stage (widgets/layout_umap.py): usearch against hnswlib on the same data, same run.

For each size (n x 384 clustered vectors, UMAP's default 30k sample): building
the index over the sample, UMAP's k-NN graph of the sample (k 15), and placing
every other point (its 3 nearest sampled points at ef 10, as ``place`` does); each
library twice, in turns.
Recall is measured against exact cosine search on 500 probes. hnswlib (the
library before, same M 8 / ef_construction 40 / one build thread) is the
reference when it is installed; it is no longer a vecbook dependency.

    python bench/bench_map_neighbours.py               # 50k and 200k
    python bench/bench_map_neighbours.py 1000000       # chosen sizes
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data

from vecbook.widgets.layout_umap import PLACE_EF, PLACE_K, QUERY_THREADS, NeighbourIndex, sample_indices

SAMPLE, GRAPH_K, PROBES = 30_000, 15, 500


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Hnswlib:
    """The reference: what NeighbourIndex did with hnswlib."""

    def __init__(self, points: np.ndarray):
        import hnswlib

        self.points = points
        self.index = hnswlib.Index(space="cosine", dim=points.shape[1])
        self.index.init_index(len(points), M=8, ef_construction=40, random_seed=0)
        self.index.add_items(points, num_threads=1)

    def query(self, rows: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        self.index.set_ef(max(k, ef if ef is not None else max(2 * k, 32)))
        return self.index.knn_query(rows, k=k, num_threads=QUERY_THREADS)


def recall(found: np.ndarray, points: np.ndarray, rows: np.ndarray, k: int) -> float:
    exact = np.argsort(-(rows @ points.T), axis=1)[:, :k]  # unit vectors: cosine is the dot product
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)]))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bench(n: int, libraries: dict) -> None:
    x = data.vectors(n, 384)
    sample = sample_indices(n, SAMPLE)
    others = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    points = np.ascontiguousarray(x[sample])
    probes = np.random.default_rng(1).choice(len(others), PROBES, replace=False)
    print(f"{n:,} x 384, sample {len(sample):,}, {len(others):,} placed, {QUERY_THREADS} query thread(s)  [{load()}]")
    times = {}
    # Twice, the second time in the other order, so a burst of load from elsewhere hits both; the best total counts.
    for name in [*libraries, *reversed(libraries)]:
        make = libraries[name]
        index, build = timed(make, points)
        (graph, _), graph_s = timed(index.query, points, GRAPH_K)
        place_s = 0.0
        for first in range(0, len(others), 10_000):  # place()'s chunks
            _, seconds = timed(index.query, x[others[first : first + 10_000]], PLACE_K, PLACE_EF)
            place_s += seconds
        placed, _ = index.query(x[others[probes]], PLACE_K, PLACE_EF)
        times[name] = min(times.get(name, np.inf), build + graph_s + place_s)
        print(f"  {name:8s} build {build:5.1f} s, graph {graph_s:4.1f} s (recall@{GRAPH_K} "
              f"{recall(graph[probes % len(sample)], points, points[probes % len(sample)], GRAPH_K):.3f}), "
              f"placement {place_s:4.1f} s (recall@{PLACE_K} {recall(placed, points, x[others[probes]], PLACE_K):.3f}), "
              f"total {times[name]:5.1f} s  [{load()}]", flush=True)
    if len(times) == 2:
        print(f"  usearch / hnswlib, best totals: {times['usearch'] / times['hnswlib']:.2f}x")


def main(argv: list[str]) -> None:
    libraries = {"usearch": lambda points: NeighbourIndex(points, "cosine")}
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        print("hnswlib not installed: usearch figures only")
    else:
        libraries = {"hnswlib": Hnswlib, **libraries}
    for n in [int(a) for a in argv if a.isdigit()] or [50_000, 200_000]:
        bench(n, libraries)


if __name__ == "__main__":
    main(sys.argv[1:])
