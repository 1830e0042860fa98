"""The first write after a cold open of a big `local` store, against the second (a warm write).

    python bench/bench_first_write.py [--n 1000000] [--folder /tmp/first-write] [--runs 3]

Builds (once, kept in ``--folder``/base) an ``--n`` × 384 store without the index, 50,000
nodes a call, closed. Each run copies it afresh (so every run opens the same files: no log
left by an earlier run), then in a fresh process opens it, answers one exact search, and
times one single-node insert and a second one; the anonymous RSS after them. Prints one
line per run and the ratio first/second; the machine's load with each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROBE = r"""
import os, sys, time, numpy as np
from vecbook import LocalVectorStore, VectorNode
def anon_gb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) / 1e6
start = time.perf_counter()
store = LocalVectorStore(store_dir=sys.argv[1])
query = np.random.default_rng(1).standard_normal(384).astype(np.float32)
store.search_by_vector(query, "ws", top_k=10)
opened = time.perf_counter()
store.insert([VectorNode(unique_id="first-write", content="x", vector=query)], "ws")
first = time.perf_counter()
store.insert([VectorNode(unique_id="second-write", content="y", vector=query)], "ws")
second = time.perf_counter()
print(opened - start, first - opened, second - first, anon_gb())
os._exit(0)  # the copy is thrown away: no close, no compaction
"""


def build(folder: Path, n: int) -> None:
    from vecbook import LocalVectorStore, VectorNode

    rng = np.random.default_rng(0)
    store = LocalVectorStore(store_dir=str(folder))
    store.create_workspace("ws")
    for lo in range(0, n, 50_000):
        vectors = rng.standard_normal((min(50_000, n - lo), 384), dtype=np.float32)
        store.insert(
            [VectorNode(unique_id=f"n{lo + i}", content=f"text {lo + i}", metadata={"i": lo + i}, vector=v) for i, v in enumerate(vectors)], "ws"
        )
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--folder", default="/tmp/vecbook-first-write")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base, work = Path(args.folder) / "base", Path(args.folder) / "run"
    if not (base / "ws").exists():
        t = time.perf_counter()
        build(base, args.n)
        print(f"built {args.n:,} x 384 in {time.perf_counter() - t:.0f} s")
    for run in range(args.runs):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        out = subprocess.run([sys.executable, "-c", PROBE, str(work)], check=True, capture_output=True, text=True).stdout.split()
        opened, first, second, anon = map(float, out)
        print(
            f"run {run + 1}: open + first answer {opened:.2f} s, first insert {first:.2f} s, second {second * 1000:.1f} ms "
            f"(first/second {first / second:.0f}x), anon RSS {anon:.2f} GB, load {os.getloadavg()[0]:.1f}"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
