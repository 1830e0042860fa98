"""The first reads of rows after a local workspace is opened (issue 15: what a call decodes of the snapshot).

    python bench/bench_first_reads.py STORE_DIR [--ops get10,cols100k,frame,colour,filter] [--trees SRC_A SRC_B] [--rounds 2]

STORE_DIR holds workspace ``bench`` as ``bench/build_local.py STORE_DIR 1m`` builds it. Each
call is timed in a fresh process right after the open and its first search: the first time,
then again (the reference, measured in the same process: what the call costs once the rows it
needs are decoded). ``--trees`` runs the same calls with each ``src`` directory first on the
path (e.g. ``/work/main/src`` against a branch's), alternating, to compare two versions on one
fixture. Prints one JSON line per run with the load average beside it.

Calls: ``get10`` get of 10 random ids; ``cols100k`` ``read_columns(node_ids=)`` of 100,000
random ids (ids, contents, metadatas); ``frame`` the same read as the map's selection DataFrame
(metadata flattened into columns, as ``map_state.selection`` builds it); ``colour`` the
explorer's colour column: ids and metadata of every node, one field picked; ``filter`` a count
with a metadata filter (1 % of the nodes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

OPS = ("get10", "cols100k", "frame", "colour", "filter")


def child(folder: str, op: str) -> dict:
    import numpy as np
    import pandas  # noqa: F401 - loaded before timing, as in a notebook that shows the explorer

    from vecbook import LocalVectorStore
    from vecbook.widgets import _table, introspect

    start = time.perf_counter()
    store = LocalVectorStore(store_dir=folder)
    n = store.count("bench")
    dims = store._state("bench").table.dimensions
    store.search_by_vector(np.ones(dims, dtype=np.float32), "bench", top_k=10)
    opened = time.perf_counter() - start
    rng = random.Random(7)
    ids10 = [f"id{rng.randrange(n)}" for _ in range(10)]
    ids100k = [f"id{i}" for i in sorted(rng.sample(range(n), min(n, 100_000)))]

    def frame(metadatas):
        if hasattr(introspect, "flat_rows"):
            return _table.frame(introspect.flat_rows(metadatas))
        return _table.frame([introspect.flatten_metadata(m) for m in metadatas])  # before flat_rows

    def run():
        if op == "get10":
            return store.get(ids10, "bench")
        if op == "cols100k":
            return store.read_columns("bench", node_ids=ids100k, columns=["ids", "contents", "metadatas"])
        if op == "frame":
            read = store.read_columns("bench", node_ids=ids100k, columns=["ids", "contents", "metadatas"])
            table = frame(read.metadatas)
            table.insert(0, "content", read.contents)
            table.insert(0, "id", read.ids)
            return table
        if op == "colour":
            return [m.get("category") for m in store.read_columns("bench", columns=["ids", "metadatas"]).metadatas]
        if op == "filter":
            return store.count("bench", filter_dict={"bucket": 7})
        raise SystemExit(f"unknown call {op!r}")

    out = {"call": op, "open_and_first_search_s": round(opened, 3)}
    for key in ("first_s", "again_s"):
        t = time.perf_counter()
        run()
        out[key] = round(time.perf_counter() - t, 3)
    out["first_over_again"] = round(out["first_s"] / max(out["again_s"], 1e-4), 2)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--trees", nargs="*", default=[None])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.folder, args.child)))
        return
    for _ in range(args.rounds):
        for tree in args.trees:
            env = dict(os.environ)
            if tree:
                env["PYTHONPATH"] = os.pathsep.join([tree, os.path.dirname(os.path.abspath(__file__))])
            for op in args.ops.split(","):
                with open("/proc/loadavg") as f:
                    load = f.read().split()[0]
                done = subprocess.run([sys.executable, __file__, args.folder, "--child", op], env=env, capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps({"tree": tree or "current", "load": float(load), **result}), flush=True)


if __name__ == "__main__":
    main()
