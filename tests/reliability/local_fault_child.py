"""A child process for ``test_local_faults.py``.

``fsize STORE LIMIT``: inserts under ``RLIMIT_FSIZE`` = LIMIT bytes (files cannot grow past
it: a disk that fills up); prints ``BEGIN <ids>`` before each call, then ``ACK`` or
``FAIL <type> <errno> <path>``.
``hold STORE``: takes the lock of workspace 'ws' the way a writer does, prints ``HELD`` and sleeps.
``sigint STORE TRIALS NODES``: Ctrl-C (a real SIGINT) at random moments of big inserts;
prints ``TRIAL <json>`` per trial: what the same store object and a fresh one see.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time

import numpy as np

import vecbook
from vecbook.stores import local


def run_fsize(store_dir: str, limit: int) -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    local.MIN_COMPACT_BYTES = 32 << 10  # compactions need room too, and fail
    store = vecbook.LocalVectorStore(store_dir=store_dir)
    store.create_workspace("ws")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    rng = np.random.default_rng(0)
    for k in range(400):
        ids = [f"k{k}-{i}" for i in range(rng.integers(1, 40))]
        print("BEGIN " + json.dumps(ids), flush=True)
        try:
            store.insert([vecbook.VectorNode(unique_id=i, content=i, vector=rng.standard_normal(32)) for i in ids], "ws")
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            print(f"FAIL {type(exc).__name__} {getattr(exc, 'errno', None)} {getattr(exc, 'path', '')}", flush=True)
        else:
            print("ACK", flush=True)
        store.wait_for_compaction()
    store.close()


def run_hold(store_dir: str) -> None:
    from pathlib import Path

    from vecbook.stores.local import locking

    path = Path(store_dir) / "ws" / "LOCK"
    lock = locking.open_lock(path)
    locking.acquire(lock, path, None)
    print("HELD", flush=True)
    time.sleep(600)


def run_sigint(store_dir: str, trials: int, n: int) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = np.random.default_rng(1)
    big = [vecbook.VectorNode(unique_id=f"big{i}", content=f"big {i}", vector=v) for i, v in enumerate(rng.standard_normal((n, 16)).astype(np.float32))]
    for trial in range(trials):
        folder = os.path.join(store_dir, f"t{trial}")
        store = vecbook.LocalVectorStore(store_dir=folder)
        store.create_workspace("ws")
        store.insert([vecbook.VectorNode(unique_id=f"pre{i}", content="pre", vector=np.ones(16)) for i in range(10)], "ws")
        timer = threading.Timer(random.Random(trial).uniform(0.0, 0.3), os.kill, args=(os.getpid(), signal.SIGINT))
        timer.start()
        outcome = "returned"
        try:
            store.insert(big, "ws")
        except KeyboardInterrupt:
            outcome = "interrupted"
        try:
            timer.join()
            time.sleep(0.05)
        except KeyboardInterrupt:
            outcome = "interrupt after the call"
        errors = []
        counts = []
        calls = (
            lambda s: s.count("ws"),
            lambda s: s.search_by_vector(np.ones(16), "ws", top_k=3),
            lambda s: s.insert(vecbook.VectorNode(unique_id="after", vector=np.ones(16)), "ws"),
            lambda s: s.count("ws"),
        )
        for call in calls:
            try:
                result = call(store)
                if isinstance(result, int):
                    counts.append(result)
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                errors.append(f"{type(exc).__name__}: {exc}")
        fresh = vecbook.LocalVectorStore(store_dir=folder).count("ws")
        print("TRIAL " + json.dumps({"outcome": outcome, "errors": errors, "counts": counts, "fresh": fresh}), flush=True)
        store.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "fsize":
        run_fsize(sys.argv[2], int(sys.argv[3]))
    elif mode == "hold":
        run_hold(sys.argv[2])
    else:
        run_sigint(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
