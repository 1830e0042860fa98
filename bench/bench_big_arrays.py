"""Big arrays in maps of their own (vecbook._big_arrays) against numpy's allocator, in fresh processes.

    python bench/bench_big_arrays.py [--rows 1000000] [--rounds 3]

Two figures, each in a fresh process per run, the two allocators alternating:
1. copying ROWS x 384 float32 vectors into a new array (what ``read_columns`` does);
2. a bulk load of ROWS pre-embedded nodes into the ``memory`` backend (batches of 10,000),
   then the median of 20 exact searches: the store's matrix from ``np.empty`` (as shipped)
   against the same store with its matrix in a map of its own (patched in). The map loads
   faster and searches slower (no huge pages for a matrix that every exact search streams):
   why the store's own matrix keeps numpy's allocator and only ``read_columns`` maps.

numpy advises transparent huge pages for arrays of 4 MB or more; where the system's THP
setting is ``madvise`` with ``defrag`` ``madvise``, their first touch can wait for memory
compaction. The figures depend on the machine's memory state: alternate, and read the spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def one(kind: str, allocator: str, rows: int) -> dict:
    from vecbook import _big_arrays

    rng = np.random.default_rng(0)
    source = rng.standard_normal((rows, 384), dtype=np.float32)
    if kind == "copy":
        t = time.perf_counter()
        out = _big_arrays.empty(source.shape, np.float32) if allocator == "map" else np.empty(source.shape, np.float32)
        np.copyto(out, source)
        return {"seconds": time.perf_counter() - t}
    from vecbook import MemoryVectorStore
    from vecbook.node import VectorNode
    from vecbook.stores.engine import matrix

    if allocator == "map":
        matrix.RamMatrix.empty = lambda self, capacity, dims: _big_arrays.empty((capacity, dims), np.float32)
    store = MemoryVectorStore()
    store.create_workspace("ws", dimensions=384)
    batches = [[VectorNode.model_construct(unique_id=f"id{i}", workspace_id="ws", content="", metadata={}, vector=source[i])
                for i in range(lo, min(rows, lo + 10_000))] for lo in range(0, rows, 10_000)]
    t = time.perf_counter()
    for batch in batches:
        store.insert(batch, "ws")
    load = time.perf_counter() - t
    query = rng.standard_normal(384, dtype=np.float32)
    store.search_by_vector(query, "ws", top_k=10)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        store.search_by_vector(query, "ws", top_k=10)
        times.append(time.perf_counter() - t)
    return {"seconds": load, "search_ms": 1000 * statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "ALLOCATOR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.rows)))
        return
    thp = Path("/sys/kernel/mm/transparent_hugepage")
    setting = {f: (thp / f).read_text().strip() for f in ("enabled", "defrag")} if thp.exists() else "n/a"
    print(f"big arrays: {args.rows:,} x 384 float32, {args.rounds} rounds, THP {setting}, load {open('/proc/loadavg').read().split()[0]}")
    for kind, what in (("copy", "copy into a new array"), ("memory", "bulk load into the memory backend")):
        figures: dict[str, list[dict]] = {"numpy": [], "map": []}
        for _ in range(args.rounds):
            for allocator in figures:
                out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--one", kind, allocator],
                                     check=True, capture_output=True, text=True).stdout
                figures[allocator].append(json.loads(out))
        for allocator, runs in figures.items():
            seconds = ", ".join(f"{r['seconds']:.2f}" for r in runs)
            searches = ", ".join(f"{r['search_ms']:.1f}" for r in runs) if kind == "memory" else ""
            search = f"; search median {searches} ms" if searches else ""
            print(f"  {what}, {allocator:>5}: {seconds} s{search}")
        ratio = statistics.median(r["seconds"] for r in figures["numpy"]) / statistics.median(r["seconds"] for r in figures["map"])
        print(f"  {what}: numpy's allocator / a map of its own = {ratio:.2f}x (medians)")


if __name__ == "__main__":
    main()
