"""Building with the index against the raw library: local + index="hnsw" vs usearch alone, taking turns.

    python bench/bench_ann_build.py [--n 40000] [--quantization int8|binary|none] [--rounds 2]

Each round, in one process and in turn on the same vectors (10,000 per call):
(1) a local store with the index, every node inserted then ``close()``, and the
time spent inside the index's ``add``; (2) usearch alone adding the same codes
in the same chunks with the same settings; (3) the same store without an index.
Taking turns lets the machine's load hit all three alike; the load is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from bench_ann_scale import stream  # noqa: E402

from vecbook import LocalVectorStore  # noqa: E402
from vecbook.node import VectorNode  # noqa: E402
from vecbook.stores.engine import ann  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", default="40000")
    parser.add_argument("--quantization", default="int8", choices=["int8", "binary", "none"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    quantization = None if args.quantization == "none" else args.quantization
    blocks = list(stream(data.parse_size(args.n)))
    spent = {"add": 0.0}
    real_add = ann.HnswIndex.add

    def timed_add(self, labels, vectors):
        t = time.perf_counter()
        real_add(self, labels, vectors)
        spent["add"] += time.perf_counter() - t

    ann.HnswIndex.add = timed_add

    def store(index: str | None) -> float:
        folder = tempfile.mkdtemp(prefix="vecbook-bench-annbuild-")
        try:
            s = LocalVectorStore(store_dir=folder, index=index, index_params={"quantization": quantization} if index else None)
            s.create_workspace("bench")
            calls = [
                [VectorNode.model_construct(unique_id=f"id{start + i}", workspace_id="bench", content="", metadata={"i": start + i}, vector=v) for i, v in enumerate(b)]
                for start, b in blocks
            ]
            spent["add"] = 0.0
            t = time.perf_counter()
            for batch in calls:
                s.insert(batch, "bench")
            s.close()
            return time.perf_counter() - t
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def raw() -> float:
        index = ann.HnswIndex(384, "cosine", ann.IndexSpec(quantization=quantization))
        t = time.perf_counter()
        for start, b in blocks:
            index._raw.add(np.arange(start, start + len(b), dtype=np.uint64), index._codes(b), threads=os.cpu_count())
        return time.perf_counter() - t

    for _ in range(args.rounds):
        with_index = store("hnsw")
        in_add = spent["add"]
        alone = raw()
        without = store(None)
        print(
            f"n={len(blocks) * 10_000:,} {args.quantization}: store+index {with_index:.1f} s (index add {in_add:.1f} s), "
            f"usearch alone {alone:.1f} s, store without index {without:.1f} s: {with_index / alone:.2f}x raw   load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
