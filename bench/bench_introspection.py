"""Metadata introspection on memory: the vectorised engine path against the base class's scan,
measured in the same run on the same workspace (the scan is what chroma and the other
fallbacks do, minus their network).

    PYTHONPATH=src python bench/bench_introspection.py [--n 100000]

Prints the median of 5 runs of each call, and the ratio scan / engine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from vecbook import MemoryVectorStore, VectorNode
from vecbook.stores.base import BaseVectorStore


def workspace(n: int) -> MemoryVectorStore:
    rng = np.random.default_rng(0)
    store = MemoryVectorStore()
    store.create_workspace("w")
    metadatas = [
        {"category": f"c{i % 50}", "rank": int(i), "ratio": float(rng.random()), "month": f"2026-{1 + i % 12:02d}", "tags": ["a", f"t{i % 7}"], "author": {"name": f"a{i % 1000}"}}
        for i in range(n)
    ]
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    store.insert([VectorNode(unique_id=f"n{i}", content="", metadata=md, vector=v) for i, (md, v) in enumerate(zip(metadatas, vectors))], "w")
    return store


def median_seconds(fn, runs: int = 5) -> float:
    fn()  # warm: builds the filter columns once
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    n = parser.parse_args().n
    store = workspace(n)
    scan = MemoryVectorStore()  # the same tables, read through the base class's scanning hooks
    scan._tables = store._tables
    for hook in ("_distinct_values", "_field_range", "_metadata_fields", "_describe_metadata", "_count_where", "_matching_ids"):
        setattr(scan, hook, getattr(BaseVectorStore, hook).__get__(scan))
    calls = {
        "count(filter)": lambda s: s.count("w", filter_dict={"category": "c3"}),
        "distinct_values(category)": lambda s: s.distinct_values("w", "category"),
        "distinct_values(tags)": lambda s: s.distinct_values("w", "tags"),
        "distinct_values(author.name)": lambda s: s.distinct_values("w", "author.name", limit=20),
        "field_range(rank)": lambda s: s.field_range("w", "rank"),
        "field_range(month)": lambda s: s.field_range("w", "month"),
        "distinct_values(category, filter)": lambda s: s.distinct_values("w", "category", filter_dict={"rank": {"lt": n // 10}}),
        "metadata_fields": lambda s: s.metadata_fields("w"),
        "describe_metadata (the explorer's call)": lambda s: s.describe_metadata("w", max_values=30),
    }
    print(f"{n:,} nodes; median of 5 runs")
    print(f"{'call':38} {'engine ms':>10} {'scan ms':>10} {'scan/engine':>12}")
    for name, call in calls.items():
        assert call(store) == call(scan), name
        fast, slow = median_seconds(lambda c=call: c(store)), median_seconds(lambda c=call: c(scan))
        print(f"{name:38} {fast * 1e3:10.1f} {slow * 1e3:10.1f} {slow / fast:11.1f}x")
    with open("/proc/loadavg") as f:
        print("load:", f.read().strip())


if __name__ == "__main__":
    main()
