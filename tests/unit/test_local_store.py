"""What is specific to the local backend: files, crashes, other processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.children import CHILD_ENV, ROOT
from vecbook import (
    HashEmbeddingModel,
    LocalVectorStore,
    StoreCorruptedError,
    VectorNode,
)
from vecbook.stores import local  # the backend's tunables



def store(path: Path) -> LocalVectorStore:
    return LocalVectorStore(embedding_model=HashEmbeddingModel(8), store_dir=path)


def fill(s: LocalVectorStore, count: int, prefix: str = "n") -> None:
    s.create_workspace("ws")
    s.insert([VectorNode(unique_id=f"{prefix}{i}", content=f"text {i}", metadata={"i": i}) for i in range(count)], "ws")


def state(s: LocalVectorStore) -> dict:
    return {n.unique_id: (n.content, n.metadata) for n in s.iter_workspace_nodes("ws")}


def test_reopen_sees_everything(tmp_path):
    a = store(tmp_path)
    fill(a, 100)
    a.delete(["n3", "n4"], "ws")
    a.insert(VectorNode(unique_id="n5", content="changed"), "ws")
    before = state(a)
    a.close()
    b = store(tmp_path)
    assert state(b) == before and len(before) == 98
    assert b.get("n5", "ws")[0].vector.tobytes() == HashEmbeddingModel(8).get_embeddings("changed").tobytes()


def test_second_store_sees_writes_without_reopening(tmp_path):
    a, b = store(tmp_path), store(tmp_path)
    fill(a, 10)
    assert b.count("ws") == 10
    b.insert(VectorNode(unique_id="from-b", content="b"), "ws")
    a.delete("n0", "ws")
    assert a.count("ws") == b.count("ws") == 10
    assert [n.unique_id for n in a.search("b", "ws", top_k=1)] == ["from-b"]


def test_torn_tail_is_ignored_then_truncated(tmp_path):
    a = store(tmp_path)
    fill(a, 20)
    log = next((tmp_path / "ws").glob("log-*.bin"))
    good_size = log.stat().st_size
    with open(log, "ab") as f:
        f.write(b"VBL1\xff\x00\x00\x00garbage-from-a-crash")
    b = store(tmp_path)
    assert b.count("ws") == 20
    b.insert(VectorNode(unique_id="after", content="x"), "ws")
    c = store(tmp_path)
    assert c.count("ws") == 21 and c.get("after", "ws")
    assert log.stat().st_size > good_size and b"garbage" not in log.read_bytes()


def test_compaction_publishes_a_new_generation(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 4096)
    a = store(tmp_path)
    fill(a, 10)
    for i in range(200):
        a.insert(VectorNode(unique_id=f"x{i % 50}", content=f"round {i}"), "ws")
    a.delete([f"x{i}" for i in range(10)], "ws")
    a.wait_for_compaction()
    meta = json.loads((tmp_path / "ws" / "meta.json").read_text())
    assert meta["generation"] > 1
    files = sorted(p.name for p in (tmp_path / "ws").iterdir())
    g = f"{meta['generation']:06d}"
    assert files == ["LOCK", f"log-{g}.bin", "meta.json", f"snap-{g}.f32", f"snap-{g}.ids", f"snap-{g}.json", f"snap-{g}.nrm", f"snap-{g}.rix"]
    expected = state(a)
    assert len(expected) == 50 and state(store(tmp_path)) == expected


def test_a_workspace_emptied_by_deletes_survives_compaction(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    a = LocalVectorStore(store_dir=tmp_path)
    a.create_workspace("ws")
    ids = [f"a-rather-long-node-id-{i}" for i in range(50)]
    a.insert([VectorNode(unique_id=i, vector=[1.0]) for i in ids], "ws")
    a.wait_for_compaction()
    a.delete(ids, "ws")  # a log frame bigger than the 1-d snapshot: compacts to an empty snapshot
    a.close()
    assert json.loads((tmp_path / "ws" / "meta.json").read_text())["generation"] == 2
    b = LocalVectorStore(store_dir=tmp_path)
    assert b.count("ws") == 0 and b.read_columns("ws").vectors.shape == (0, 1)
    b.insert(VectorNode(unique_id="again", vector=[2.0]), "ws")
    assert [n.unique_id for n in b.search_by_vector([1.0], "ws", top_k=5)] == ["again"]


def test_corrupt_snapshot_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 1024)
    a = store(tmp_path)
    fill(a, 200)
    fill(a, 200, prefix="m")
    a.wait_for_compaction()
    snap = next((tmp_path / "ws").glob("snap-*.f32"))
    snap.write_bytes(snap.read_bytes()[:-10])
    with pytest.raises(StoreCorruptedError, match="snap"):
        store(tmp_path).count("ws")


def test_a_directory_that_is_not_a_workspace_is_not_listed(tmp_path):
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("someone else's file")
    a = store(tmp_path)
    assert a.list_workspaces() == []
    with pytest.raises(StoreCorruptedError):
        a.create_workspace("stray")
    assert (tmp_path / "stray" / "notes.txt").read_text() == "someone else's file"


def _run_child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.unit.local_child", *args], stdout=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=ROOT)


def _apply(expected: dict, op: dict) -> None:
    if op["op"] == "insert":
        for n in op["nodes"]:
            expected[n["id"]] = n["content"]
    else:
        for i in op["ids"]:
            expected.pop(i, None)


def crash_trial(tmp_path: Path, seed: int, mode: str = "crash") -> int:
    """Kill a writing child at a random moment; every acknowledged write must survive, nothing half-there."""
    folder = tmp_path / f"trial{seed}"
    child = _run_child(mode, str(folder), str(seed))
    time.sleep(random.Random(seed).uniform(0.4, 1.5))
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate()
    acked: dict = {}
    pending = None
    acks = 0
    for line in out.splitlines():
        if line.startswith("BEGIN "):
            pending = json.loads(line[6:])
        elif line == "ACK" and pending is not None:
            _apply(acked, pending)
            pending, acks = None, acks + 1
    with_pending = dict(acked)
    if pending is not None:
        _apply(with_pending, pending)
    reopened = store(folder) if mode != "indexed" else indexed_store(folder)
    got = {i: content for i, (content, _) in state(reopened).items()} if reopened.exist_workspace("ws") else {}
    assert got in (acked, with_pending), f"seed {seed}: state after kill matches neither the acknowledged writes nor them plus the in-flight one"
    for node in reopened.iter_workspace_nodes("ws") if got else ():
        assert node.metadata == {"c": node.content}
    if mode == "indexed" and got:
        assert_the_index_serves_every_node(reopened, seed)
    if got:
        reopened.insert(VectorNode(unique_id="post-crash", content="ok"), "ws")
        assert_only_the_published_generation(folder / "ws")
    return acks


def assert_only_the_published_generation(folder: Path) -> None:
    """Nothing an interrupted compaction or an older generation left: the next writer swept it."""
    g = json.loads((folder / "meta.json").read_text())["generation"]
    expected = {"LOCK", "meta.json", f"log-{g:06d}.bin"} | ({f"snap-{g:06d}.json", f"snap-{g:06d}.f32", f"snap-{g:06d}.nrm", f"snap-{g:06d}.ids"} if g else set())
    caches = {f"snap-{g:06d}{suffix}" for suffix in (".rix", ".usearch", ".labels.npy", ".ann.json", ".side.usearch")}  # may be absent
    assert {p.name for p in folder.iterdir()} - caches - {"EXTEND"} == expected


def assert_the_index_serves_every_node(indexed: LocalVectorStore, seed: int) -> None:
    """Each node's own vector finds it through the index: the graph (mapped, carried over or rebuilt) and the
    small graph of the rows waiting beside it. Both are approximate: a graph that took many removals and
    re-adds may leave a node unreachable, so at most 2 % may be missed. The small graph must hold exactly
    the rows the sidecar says wait, each with its current vector."""
    table = indexed._state("ws").table
    waiting = np.array(sorted(table._unindexed), dtype=np.int64)
    if len(waiting):
        side, rows = table._side, table._rows_of_labels(waiting)
        assert len(side) == len(waiting) and side.holds(waiting) and (rows >= 0).all(), f"seed {seed}: the small graph is not the waiting rows"
        held = np.vstack(side._raw.get(waiting.astype(np.uint64)))
        assert np.allclose(held, table._vectors[rows], atol=1e-6), f"seed {seed}: the small graph holds older vectors"
    misses = 0
    nodes = list(indexed.iter_workspace_nodes("ws"))
    for node in nodes:
        top = indexed.search_by_vector(node.vector, "ws", top_k=1)[0].metadata["score"]
        misses += top < 1 - 1e-6
    assert misses <= 0.02 * len(nodes), f"seed {seed}: {misses} of {len(nodes)} nodes not found by their own vectors"


def indexed_store(path: Path) -> LocalVectorStore:
    from tests.unit.local_child import INDEX_DIMS, INDEX_PARAMS

    return LocalVectorStore(embedding_model=HashEmbeddingModel(INDEX_DIMS), store_dir=path, index="hnsw", index_params=INDEX_PARAMS)


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    trials = int(os.environ.get("VECBOOK_CRASH_TRIALS", "20"))
    acks = [crash_trial(tmp_path, seed) for seed in range(trials)]
    assert sum(acks) > trials  # the children really were writing when killed
    starts = [json.loads(p.read_text())["log_start"] for p in tmp_path.glob("trial*/ws/meta.json")]
    assert any(starts)  # some kills came after a compaction left the frames written meanwhile in place


def test_kill_9_while_compactions_extend_the_vector_file_loses_no_acknowledged_write(tmp_path):
    """A bulk load: every compaction extends the published .f32 in place, so kills land inside extensions."""
    trials = max(4, int(os.environ.get("VECBOOK_CRASH_TRIALS", "20")) // 2)
    acks = [crash_trial(tmp_path, seed, mode="append") for seed in range(trials)]
    assert sum(acks) > trials
    assert any((tmp_path / f"trial{seed}" / "ws" / "EXTEND").exists() for seed in range(trials))  # extensions were under way


def test_kill_9_while_compactions_carry_a_mapped_graph_over_loses_no_acknowledged_write(tmp_path):
    """A store opened with its saved graph mapped: compactions carry the graph over with the rows waiting
    beside it, or fold them in and save it whole; after a kill, every node is still found through the graph."""
    pytest.importorskip("usearch")
    trials = max(4, int(os.environ.get("VECBOOK_CRASH_TRIALS", "20")) // 2)
    acks = [crash_trial(tmp_path, seed, mode="indexed") for seed in range(trials)]
    assert sum(acks) > trials
    sidecars = [json.loads(p.read_text()) for seed in range(trials) for p in (tmp_path / f"trial{seed}" / "ws").glob("snap-*.ann.json")]
    assert any(meta["unindexed"] for meta in sidecars)  # some published graphs were carried over, rows waiting beside them


def test_four_processes_lose_nothing(tmp_path):
    per_process = int(os.environ.get("VECBOOK_CONCURRENT_INSERTS", "250"))
    children = [_run_child("insert", str(tmp_path), f"p{k}", str(per_process)) for k in range(4)]
    outputs = [c.communicate(timeout=300)[0] for c in children]
    assert all(c.returncode == 0 and "DONE" in out for c, out in zip(children, outputs))
    s = store(tmp_path)
    assert s.count("ws") == 4 * per_process
    assert {n.unique_id for n in s.iter_workspace_nodes("ws")} == {f"p{k}-{i}" for k in range(4) for i in range(per_process)}
    assert json.loads((tmp_path / "ws" / "meta.json").read_text())["generation"] > 1  # compactions ran meanwhile
    assert not list((tmp_path / "ws").glob(".snap-*"))  # and left nothing behind


def test_four_processes_writing_the_same_nodes_again_leave_each_once_in_a_version_last_written(tmp_path):
    """Besides their own nodes, the four write 10 shared nodes again and again (each write moves a node
    the published snapshot holds to a new row), while compactions run. Each node is then there once,
    and a shared one holds the last version some process wrote (the log orders the writes)."""
    from tests.unit.local_child import SHARED, shared_writes

    per_process = int(os.environ.get("VECBOOK_CONCURRENT_INSERTS", "250"))
    children = [_run_child("rewrite", str(tmp_path), f"p{k}", str(per_process)) for k in range(4)]
    outputs = [c.communicate(timeout=300)[0] for c in children]
    assert all(c.returncode == 0 and "DONE" in out for c, out in zip(children, outputs))
    finals: dict[str, set[str]] = {}
    for k in range(4):
        last = {node_id: content for _, node_id, content in shared_writes(f"p{k}", per_process)}
        for node_id, content in last.items():
            finals.setdefault(node_id, set()).add(content)
    s = store(tmp_path)
    listed = [n.unique_id for n in s.iter_workspace_nodes("ws")]
    assert len(listed) == len(set(listed)) == s.count("ws") == 4 * per_process + SHARED
    assert set(listed) == {f"p{k}-{i}" for k in range(4) for i in range(per_process)} | set(finals)
    for node in s.get(sorted(finals), "ws"):
        assert node.content in finals[node.unique_id]


def test_a_workspace_dropped_or_recreated_by_another_store_is_noticed(tmp_path):
    from vecbook import DimensionMismatchError, WorkspaceNotFoundError

    a, b = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    a.create_workspace("ws")
    a.insert(VectorNode(unique_id="x", vector=[1.0, 0.0]), "ws")
    assert a.search_by_vector([1.0, 0.0], "ws")[0].unique_id == "x"  # open in a's RAM
    b.delete_workspace("ws")
    with pytest.raises(WorkspaceNotFoundError):
        a.search_by_vector([1.0, 0.0], "ws")
    # a forgot it; a re-creates it, then b replaces it with one of other dimensions
    a.create_workspace("ws")
    a.insert(VectorNode(unique_id="y", vector=[0.0, 1.0]), "ws")
    assert a.count("ws") == 1
    b.delete_workspace("ws")
    b.create_workspace("ws")
    b.insert(VectorNode(unique_id="z", vector=[1.0, 2.0, 3.0]), "ws")
    with pytest.raises(DimensionMismatchError):
        a.search_by_vector([0.0, 1.0], "ws")
    assert [n.unique_id for n in a.search_by_vector([1.0, 2.0, 3.0], "ws")] == ["z"]
