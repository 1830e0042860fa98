"""A bulk load at a user's size, followed by readers in other processes.

250,000 nodes of 384 dimensions, 1,000 a call as ``NodeColumns``, with the store's own
thresholds: the background compactions publish generations whose log continues in the
last one's file, and free the dead bytes before it. Readers in two other processes (one
store kept open, one opened afresh for each read) and a thread of the writer's own process
(which reads the table the writes change while their frames are fsynced) check whole
batches they know were acknowledged, vector for vector. What a user checks: no read fails or sees a batch in
part, counts never go back, the disk is given back during the load, a repair that lost
meta.json keeps every node, and after close a fresh open holds every node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np

from tests.helpers.children import CHILD_ENV, ROOT
from vecbook import LocalVectorStore, NodeColumns
from vecbook.stores.local.files import log_name

BATCH, DIMS, CALLS = 1000, 384, 250

READER = f"""
import os, random, sys, numpy as np, vecbook
folder, done, keep = sys.argv[1], sys.argv[2], sys.argv[3] == "keep"
batch, dims = {BATCH}, {DIMS}
kept = vecbook.LocalVectorStore(store_dir=folder) if keep else None
rng, problems, reads, last = random.Random(7), [], 0, 0
while not os.path.exists(done) or reads < 3:
    store = kept or vecbook.LocalVectorStore(store_dir=folder)
    try:
        n = store.count("ws")
        if n < last or n % batch:
            problems.append(f"count {{n}} after {{last}}")
        last = n
        if n:
            k = rng.choice([n // batch - 1, rng.randrange(n // batch)])
            want = np.random.default_rng(k).standard_normal((batch, dims), dtype=np.float32)
            got = store.read_columns("ws", node_ids=[f"b{{k}}-{{i}}" for i in range(batch)], columns=["ids", "vectors"])
            if len(got) != batch or not np.array_equal(got.vectors, want):
                problems.append(f"batch {{k}} of {{n // batch}}: {{len(got)}} nodes, not all as written")
        reads += 1
    except Exception as exc:
        problems.append(repr(exc))
    if not keep:
        store.close()
print(reads, len(problems), problems[:1])
"""


def columns(k: int) -> NodeColumns:
    vectors = np.random.default_rng(k).standard_normal((BATCH, DIMS), dtype=np.float32)
    return NodeColumns(ids=[f"b{k}-{i}" for i in range(BATCH)], contents=[f"text {k} {i}" for i in range(BATCH)],
                       metadatas=[{"batch": k, "i": i} for i in range(BATCH)], vectors=vectors)


def read_in_the_writers_process(writer: LocalVectorStore, acked: list[int], done: threading.Event, problems: list) -> None:
    """Counts never go back nor below what was acknowledged; the last acknowledged batch reads whole."""
    last = reads = 0
    while not done.is_set() or reads < 3:
        k = acked[0]  # batches 0..k-1 were acknowledged before this read
        try:
            n = writer.count("ws")
            if n < last or n % BATCH or n < k * BATCH:
                problems.append(f"count {n} after {last}, with {k} batches acknowledged")
            last = n
            got = writer.read_columns("ws", node_ids=[f"b{k - 1}-{i}" for i in range(BATCH)], columns=["ids", "vectors"])
            if len(got) != BATCH or not np.array_equal(got.vectors, columns(k - 1).vectors):
                problems.append(f"batch {k - 1}: {len(got)} nodes, not all as written")
        except Exception as exc:  # noqa: BLE001 - reported by the test
            problems.append(repr(exc))
        reads += 1
    problems.append(reads)


def test_readers_follow_a_bulk_load_at_a_users_size_and_the_log_gives_its_disk_back(tmp_path):
    folder, done = tmp_path / "ws", tmp_path / "done"
    writer = LocalVectorStore(store_dir=tmp_path)
    writer.create_workspace("ws")
    writer.insert(columns(0), "ws")
    acked, loaded, own = [1], threading.Event(), []
    own_reader = threading.Thread(target=read_in_the_writers_process, args=(writer, acked, loaded, own))
    own_reader.start()
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(tmp_path), str(done), mode], env=CHILD_ENV, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True) for mode in ("keep", "fresh")]
    starts, freed = set(), 0
    try:
        for k in range(1, CALLS):
            writer.insert(columns(k), "ws")
            acked[0] = k + 1
            meta = json.loads((folder / "meta.json").read_text())
            starts.add(meta["log_start"])
            log = os.stat(folder / log_name(meta["generation"]))
            freed = max(freed, log.st_size - log.st_blocks * 512)
    finally:
        done.touch()
        loaded.set()
        outputs = [reader.communicate(timeout=300)[0] for reader in readers]
        own_reader.join(300)
    print("reader in the writer's process:", own[-1:], "reads;", own[:-1][:1])
    assert own[:-1] == [] and own[-1] >= 3
    for output in outputs:
        print("reader:", output.strip(), "| log starts seen:", sorted(starts), "| freed at most:", freed)
        reads, problems, example = output.split(" ", 2)
        assert int(problems) == 0 and int(reads) >= 3, example
    assert max(starts) > 0, "no generation continued the last one's log: this test checks nothing new"
    assert freed > 64 << 20, f"the log's dead bytes were not given back during the load (at most {freed} bytes)"

    writer.wait_for_compaction()
    lost = tmp_path / "lost" / "ws"  # the store as the load left it, then without its meta.json
    shutil.copytree(folder, lost)
    (lost / "meta.json").unlink()
    repairer = LocalVectorStore(store_dir=lost.parent)
    report = repairer.repair("ws")  # finds the first frame after the freed prefix of the log
    assert report["repaired"] and report["skipped_log_bytes"] == 0
    assert repairer.count("ws") == CALLS * BATCH
    got = repairer.read_columns("ws", node_ids=[f"b{CALLS - 1}-{i}" for i in range(BATCH)], columns=["vectors"])
    assert np.array_equal(got.vectors, columns(CALLS - 1).vectors)
    repairer.close()
    shutil.rmtree(lost.parent)

    writer.close()
    assert os.path.getsize(folder / log_name(json.loads((folder / "meta.json").read_text())["generation"])) == 0  # compacted

    fresh = LocalVectorStore(store_dir=tmp_path)
    assert fresh.count("ws") == CALLS * BATCH
    for k in (0, CALLS // 2, CALLS - 1):
        got = fresh.read_columns("ws", node_ids=[f"b{k}-{i}" for i in range(BATCH)])
        assert np.array_equal(got.vectors, columns(k).vectors) and got.metadatas[5] == {"batch": k, "i": 5}
    fresh.close()
