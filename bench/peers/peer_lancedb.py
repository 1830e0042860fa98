"""LanceDB (embedded, on disk) on the benchmark workload.

    python peer_lancedb.py DATA_DIR STORE_DIR COUNT [open]

Inserts go in batches of 1,000 (``table.add``), then ``table.optimize()`` merges the
fragments, as LanceDB's docs advise after many small adds. Searches without an
index are exact scans. At 100k nodes and more an IVF_PQ index is built too and
searched with ``refine_factor`` (LanceDB's documented way to restore recall:
candidates are re-ranked on the full vectors); its recall is reported beside it.
"""

from __future__ import annotations

import math
import sys
import time

import lancedb
import pyarrow as pa

from _peer import dir_bytes, emit, load, numpy_search, rss_bytes, timed_searches, written_bytes

data_dir, store_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vectors, queries, metas = load(data_dir)
n, dims = vectors.shape


def ids_of(table: pa.Table) -> list[int]:
    return [int(i[2:]) for i in table.column("id").to_pylist()]


def query(tbl, q, where=None, refine=None):
    s = tbl.search(q).distance_type("cosine").limit(10)
    if where:
        s = s.where(where, prefilter=True)
    if refine:
        s = s.nprobes(20).refine_factor(refine)
    return ids_of(s.to_arrow())


if len(sys.argv) > 4:  # cold open: a new process reopens what an earlier one wrote, to the first answer
    before = rss_bytes()
    t = time.perf_counter()
    tbl = lancedb.connect(store_dir).open_table("bench")
    query(tbl, queries[0])
    emit({"open_s": time.perf_counter() - t, "rss_delta": rss_bytes() - before})
    sys.exit()

ref = numpy_search(vectors)
schema = pa.schema([
    ("id", pa.string()), ("content", pa.string()), ("vector", pa.list_(pa.float32(), dims)),
    ("bucket", pa.int64()), ("category", pa.string()), ("rank", pa.int64()), ("month", pa.string()),
])


def batch(s: int, e: int) -> pa.Table:
    flat = pa.array(vectors[s:e].reshape(-1), type=pa.float32())
    cols = {
        "id": [f"id{i}" for i in range(s, e)], "content": [f"text {i}" for i in range(s, e)],
        "vector": pa.FixedSizeListArray.from_arrays(flat, dims),
        **{k: [metas[i][k] for i in range(s, e)] for k in ("bucket", "category", "rank", "month")},
    }
    return pa.table(cols, schema=schema)


before, written = rss_bytes(), written_bytes()
db = lancedb.connect(store_dir)
t = time.perf_counter()
tbl = db.create_table("bench", data=batch(0, min(n, 1000)), schema=schema)
for s in range(1000, n, 1000):
    tbl.add(batch(s, min(n, s + 1000)))
insert_s = time.perf_counter() - t
t = time.perf_counter()
tbl.optimize()
optimize_s = time.perf_counter() - t
rss = rss_bytes() - before

out = {"insert_s": insert_s, "optimize_s": optimize_s, "rss_delta": rss, "disk_bytes": dir_bytes(store_dir), "written_bytes": written_bytes() - written}
out["search"] = timed_searches(lambda i: query(tbl, queries[i % len(queries)]), ref, queries, count)
out["selective"] = timed_searches(lambda i: query(tbl, queries[i % len(queries)], "bucket = 7"), ref, queries, max(3, count // 4))
out["broad"] = timed_searches(lambda i: query(tbl, queries[i % len(queries)], f"rank >= {n // 10}"), ref, queries, max(3, count // 4))
if 100_000 <= n < 1_000_000:  # an IVF_PQ build at 1M takes minutes on 2 cores: 100k shows the recall story
    t = time.perf_counter()
    tbl.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_PQ",
                     num_partitions=int(math.sqrt(n)), num_sub_vectors=dims // 8)
    out["index_s"] = time.perf_counter() - t
    out["ann"] = timed_searches(lambda i: query(tbl, queries[i % len(queries)], refine=10), ref, queries, count)
emit(out)
