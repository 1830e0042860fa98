"""A close that compacts after a few thousand inserts into a big `local` store opened with its index.

    python bench/bench_close_after_writes.py --folder DIR [--workspace bench] [--nodes 3000] [--runs 2]
        [--index-params '{"quantization": "int8", "ef_construction": 256}']

``DIR`` is a store built with ``index="hnsw"`` (e.g. by ``bench/run.py --scale 10m --scale-folder DIR``).
Each run, in a fresh process: open, first answer, insert ``--nodes`` new random unit vectors in one
call, ``close()``. ``MIN_COMPACT_BYTES`` is lowered below that log so the close compacts, and
``WAITING_FLOOR`` raised so the runs' rows keep waiting beside the mapped graph (what a close of a
store opened with its graph does). Prints the seconds of the open, the insert and the close, the
bytes the process wrote, and the load. The inserted nodes stay in the store (ids ``closebench-*``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PROBE = r"""
import json, os, sys, time, zlib, numpy as np
import vecbook.stores.local as tunables
from vecbook.stores.engine import table_index
from vecbook import LocalVectorStore, VectorNode
folder, ws, nodes, params, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
tunables.MIN_COMPACT_BYTES = 1 << 20
table_index.WAITING_FLOOR = 1 << 30
def written():
    return int(next(line for line in open("/proc/self/io") if line.startswith("write_bytes")).split()[1])
t = time.perf_counter()
store = LocalVectorStore(store_dir=folder, index="hnsw", index_params=params)
dims = store._state(ws).table.dimensions
vectors = np.random.default_rng(zlib.crc32(run.encode())).standard_normal((nodes, dims)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
store.search_by_vector(vectors[0], ws, top_k=10)
opened = time.perf_counter() - t
t = time.perf_counter()
store.insert([VectorNode(unique_id=f"closebench-{run}-{i}", content="x", vector=v) for i, v in enumerate(vectors)], ws)
inserted = time.perf_counter() - t
before, t = written(), time.perf_counter()
store.close()
print(json.dumps({"open_s": opened, "insert_s": inserted, "close_s": time.perf_counter() - t,
                  "close_written_gb": (written() - before) / 1e9, "load": os.getloadavg()[0]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True)
    parser.add_argument("--workspace", default="bench")
    parser.add_argument("--nodes", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--index-params", default='{"quantization": "int8"}')
    args = parser.parse_args()
    for run in range(args.runs):
        tag = f"{run}-{time.time_ns()}"  # new ids every run
        out = subprocess.run([sys.executable, "-c", PROBE, args.folder, args.workspace, str(args.nodes), args.index_params, tag],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"run {run}: open {r['open_s']:.2f} s, insert {args.nodes:,} {r['insert_s']:.2f} s, "
              f"close {r['close_s']:.2f} s writing {r['close_written_gb']:.2f} GB (load {r['load']:.2f})", flush=True)


if __name__ == "__main__":
    main()
