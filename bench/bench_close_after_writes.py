"""A close that compacts after a few thousand inserts into a big `local` store opened with its index.

    python bench/bench_close_after_writes.py --folder DIR [--workspace bench] [--nodes 3000] [--runs 2]
        [--index-params '{"quantization": "int8", "ef_construction": 256}'] [--deletes K] [--rewrites K]

``DIR`` is a store built with ``index="hnsw"`` (e.g. by ``bench/run.py --scale 10m --scale-folder DIR``).
Each run, in a fresh process: open, first answer, insert ``--nodes`` new random unit vectors in one
call, ``close()``. ``MIN_COMPACT_BYTES`` is lowered below that log so the close compacts, and
``WAITING_FLOOR`` raised so the runs' rows keep waiting beside the mapped graph (what a close of a
store opened with its graph does). Prints the seconds of the open, the insert and the close, the
bytes the process wrote, and the load. The inserted nodes stay in the store (ids ``closebench-*``).

With ``--deletes K`` or ``--rewrites K``, each run is two processes: the same inserts alone (the
reference), then K existing nodes deleted or written again with new metadata before them; the
ratio of their closes is printed. A compaction that extends the snapshot writes megabytes; one
that writes it whole writes its 1.5 GB per million rows. Run it on a copy: the writes stay.
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
deletes, rewrites = int(sys.argv[6]), int(sys.argv[7])
if deletes or rewrites:
    ids = [i for i in store.read_columns(ws, columns=["ids"]).ids if not i.startswith("closebench-")]
    picked = [ids[i] for i in np.random.default_rng(zlib.crc32(run.encode()) + 1).choice(len(ids), deletes + rewrites, replace=False)]
    store.delete(picked[:deletes], ws)
    again = store.get(picked[deletes:], ws)
    for node in again:
        node.metadata["closebench"] = run
    store.insert(again, ws)
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
    parser.add_argument("--deletes", type=int, default=0, help="existing nodes deleted before the inserts")
    parser.add_argument("--rewrites", type=int, default=0, help="existing nodes written again (new metadata) before the inserts")
    args = parser.parse_args()
    changes = [(0, 0), (args.deletes, args.rewrites)] if args.deletes or args.rewrites else [(0, 0)]
    for run in range(args.runs):
        closes = []
        for deletes, rewrites in changes:
            tag = f"{run}-{time.time_ns()}"  # new ids every run
            out = subprocess.run([sys.executable, "-c", PROBE, args.folder, args.workspace, str(args.nodes), args.index_params, tag,
                                  str(deletes), str(rewrites)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            closes.append(r["close_s"])
            what = f", {deletes:,} deleted, {rewrites:,} rewritten" if deletes or rewrites else ""
            print(f"run {run}{what}: open {r['open_s']:.2f} s, insert {args.nodes:,} {r['insert_s']:.2f} s, "
                  f"close {r['close_s']:.2f} s writing {r['close_written_gb']:.2f} GB (load {r['load']:.2f})", flush=True)
        if len(closes) == 2:
            print(f"run {run}: close with the changes / close without: {closes[1] / closes[0]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
