"""A crash mid-dump leaves the previous dump intact: the file is old or new, never partial."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from tests.helpers.children import CHILD_ENV, ROOT
from vecbook import LocalVectorStore, VectorNode


def test_killed_dump_leaves_previous_dump_intact(tmp_path):
    store = LocalVectorStore(store_dir=tmp_path / "store")
    store.create_workspace("ws")
    rng = np.random.default_rng(0)
    store.insert([VectorNode(unique_id=f"a{i}", content=f"old {i}", vector=rng.standard_normal(256)) for i in range(2000)], "ws")
    dumps = tmp_path / "dumps"
    store.dump_workspace("ws", path=dumps)
    old = (dumps / "ws.jsonl").read_bytes()
    store.insert([VectorNode(unique_id=f"b{i}", content=f"new {i}", vector=rng.standard_normal(256)) for i in range(6000)], "ws")
    outcomes = {"old": 0, "new": 0}
    for trial in range(int(os.environ.get("VECBOOK_DUMP_CRASH_TRIALS", "6"))):
        child = subprocess.Popen([sys.executable, "-m", "tests.reliability.dump_child", str(tmp_path / "store"), str(dumps)], stdout=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=ROOT)
        assert child.stdout.readline().strip() == "START"
        time.sleep(random.Random(trial).uniform(0.0, 1.5))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        data = (dumps / "ws.jsonl").read_bytes()
        if data == old:
            outcomes["old"] += 1
            continue
        header, *lines = data.decode().splitlines()  # a header line, then the nodes
        assert "vecbook_dump" in json.loads(header)
        assert len(lines) == 8000 and all(json.loads(line)["unique_id"] for line in lines), "a partial dump replaced the old one"
        outcomes["new"] += 1
        (dumps / "ws.jsonl").write_bytes(old)
    assert outcomes["old"] >= 1  # the kills did land mid-dump
