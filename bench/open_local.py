"""Open a local workspace in this fresh process; print seconds to the first answer and the RSS added.

    python bench/open_local.py STORE_DIR WORKSPACE [--index hnsw]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import rss_bytes
from vecbook import LocalVectorStore

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("workspace")
parser.add_argument("--index")
args = parser.parse_args()
before = rss_bytes()
start = time.perf_counter()
store = LocalVectorStore(store_dir=args.folder, index=args.index)
count = store.count(args.workspace)
seconds = time.perf_counter() - start
dims = store._state(args.workspace).table.dimensions
t = time.perf_counter()
store.search_by_vector(np.ones(dims, dtype=np.float32), args.workspace, top_k=10)
first_search = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "first_search": first_search, "count": count, "rss_delta": rss_bytes() - before}))
