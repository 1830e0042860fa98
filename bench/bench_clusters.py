"""Cluster labels for the map: pick the clustering by measurement, and time labels at 50k and 1M points.

    python bench/bench_clusters.py [--sizes 50000,1000000] [--k 20]

The layout is blobs in 2-D (what a PCA/UMAP of a topical corpus looks like), the texts
are the sample's package summaries repeated. Prints, per size: k-means on the layout
(fitted on a 50k sample, every point assigned), MiniBatchKMeans, HDBSCAN (only up to
50k: it is far slower), and the whole ``cluster_labels`` call; with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50000,1000000")
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    from sklearn.cluster import HDBSCAN, KMeans, MiniBatchKMeans
    from sklearn.datasets import make_blobs

    from vecbook.datasets import load_pypi_sample
    from vecbook.widgets.clusters import cluster_labels

    summaries = [n.content for n in load_pypi_sample()]
    print(f"load before: {os.getloadavg()[0]:.2f}")
    for n in (int(s) for s in args.sizes.split(",")):
        coords, _ = make_blobs(n, centers=40, n_features=2, cluster_std=1.5, random_state=0)
        coords = coords.astype(np.float32)
        texts = [summaries[i % len(summaries)] for i in range(n)]
        rows = {
            "KMeans on all points": lambda: KMeans(args.k, n_init=1, random_state=0).fit_predict(coords),
            "KMeans fit on 50k, assign all": lambda: KMeans(args.k, n_init=1, random_state=0).fit(
                coords[np.random.default_rng(0).choice(n, min(n, 50_000), replace=False)]).predict(coords),
            "MiniBatchKMeans": lambda: MiniBatchKMeans(args.k, n_init=1, random_state=0, batch_size=4096).fit_predict(coords),
            "cluster_labels (k-means + c-TF-IDF)": lambda: cluster_labels(coords, texts, n_clusters=args.k),
        }
        if n <= 50_000:
            rows["HDBSCAN"] = lambda: HDBSCAN(min_cluster_size=max(10, n // 200), copy=True).fit(coords)
        for name, fn in rows.items():
            print(f"{n:>9,} points  {name:<38} {_timed(fn):6.2f} s   (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
