"""sqlite-vec (a ``vec0`` virtual table in an SQLite file) on the benchmark workload.

    python peer_sqlite_vec.py DATA_DIR STORE_DIR COUNT [open]

Python's own sqlite3 here cannot load extensions, so SQLite comes from ``sqlean.py``
(the same SQLite with extension loading on). ``vec0`` searches by brute force; the
filter fields are ``vec0`` metadata columns, which its KNN query filters on. One
transaction per batch of 1,000 rows, committed with SQLite's default (durable) settings.
"""

from __future__ import annotations

import os
import sys
import time

import sqlean as sqlite3
import sqlite_vec

from _peer import dir_bytes, emit, load, numpy_search, rss_bytes, timed_searches, written_bytes

data_dir, store_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
vectors, queries, metas = load(data_dir)
n, dims = vectors.shape
path = os.path.join(store_dir, "bench.db")


def connect():
    db = sqlite3.connect(path)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.enable_load_extension(False)
    return db


KNN = "select content from vec where embedding match ? and k = 10"


def query(db, q, where="", args=()):
    rows = db.execute(KNN + where, (q.astype("<f4").tobytes(), *args)).fetchall()
    return [int(r[0][5:]) for r in rows]


if len(sys.argv) > 4:  # cold open: a new process reopens what an earlier one wrote, to the first answer
    before = rss_bytes()
    t = time.perf_counter()
    query(connect(), queries[0])
    emit({"open_s": time.perf_counter() - t, "rss_delta": rss_bytes() - before})
    sys.exit()

ref = numpy_search(vectors)
os.makedirs(store_dir, exist_ok=True)
before, written = rss_bytes(), written_bytes()
db = connect()
db.execute(
    f"create virtual table vec using vec0(embedding float[{dims}] distance_metric=cosine, bucket integer, rank integer, "
    "category text, month text, +content text)"
)
t = time.perf_counter()
for s in range(0, n, 1000):
    rows = [(vectors[i].tobytes(), metas[i]["bucket"], metas[i]["rank"], metas[i]["category"], metas[i]["month"], f"text {i}")
            for i in range(s, min(n, s + 1000))]
    with db:
        db.executemany("insert into vec(embedding, bucket, rank, category, month, content) values (?, ?, ?, ?, ?, ?)", rows)
insert_s = time.perf_counter() - t
rss = rss_bytes() - before

out = {"insert_s": insert_s, "rss_delta": rss, "disk_bytes": dir_bytes(store_dir), "written_bytes": written_bytes() - written}
out["search"] = timed_searches(lambda i: query(db, queries[i % len(queries)]), ref, queries, count)
out["selective"] = timed_searches(lambda i: query(db, queries[i % len(queries)], " and bucket = 7"), ref, queries, max(3, count // 4))
out["broad"] = timed_searches(lambda i: query(db, queries[i % len(queries)], " and rank >= ?", (n // 10,)), ref, queries, max(3, count // 4))
emit(out)
