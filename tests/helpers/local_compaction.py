"""Shared by the local compaction tests: small snapshot files, a store with workspace "ws", nodes
written and read back, and the check that a snapshot is what a full rewrite writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vecbook import LocalVectorStore, VectorNode
from vecbook.stores import local
from vecbook.stores.local import compaction
from vecbook.stores.local.files import snap_name
from vecbook.stores.local.snapshot import read_ids
from vecbook.stores.local.snapshot_files import write_snapshot_from
from vecbook.stores.local.snapshot_read import read_snapshot

DIMS = 5  # 20-byte rows: small checksum chunks end inside rows


def make(i: int, version: int = 0) -> VectorNode:
    rng = np.random.default_rng(i * 7 + version)
    return VectorNode(
        unique_id=f"n{i}", content=f"text {i} v{version}", metadata={"i": i, "v": version, "tags": ["a", str(i)]},
        vector=rng.standard_normal(DIMS).astype(np.float32),
    )


@pytest.fixture
def small_files(monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)  # compact whenever the log outgrows the snapshot
    monkeypatch.setattr(local, "SNAPSHOT_LINE_ROWS", 4)
    monkeypatch.setattr(local, "SNAPSHOT_CHUNK_BYTES", 64)


@pytest.fixture
def store(tmp_path, small_files):
    """A local store under ``tmp_path`` with an empty workspace "ws"; closed afterwards."""
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    yield s
    s.close()


@pytest.fixture
def before_copy(monkeypatch):
    """``before_copy(fn)``: each compaction's snapshot copy calls ``fn(*its arguments)`` first (``fn`` may
    raise to fail it); ``before_copy(None)`` puts the copy back as it was."""
    real = compaction.write_snapshot_from

    def install(fn):
        def copy(*args, **kwargs):
            fn(*args)
            return real(*args, **kwargs)

        monkeypatch.setattr(compaction, "write_snapshot_from", real if fn is None else copy)

    return install


def write(s: LocalVectorStore, expected: dict[str, VectorNode], nodes: list[VectorNode]) -> None:
    """Insert ``nodes`` into "ws", note them in ``expected`` and wait for the compaction they may start."""
    s.insert(nodes, "ws")
    expected.update((n.unique_id, n) for n in nodes)
    s.wait_for_compaction()


def published(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def vectors_inode(folder: Path) -> int:
    """The inode of the published snapshot's vector file (kept when a compaction extends it)."""
    return (folder / f"{snap_name(published(folder)['generation'])}.f32").stat().st_ino


def check(folder: Path, expected: dict[str, VectorNode]) -> None:
    """A fresh store reads ``expected``; the snapshot equals a full rewrite of its rows (holes included), byte for byte."""
    reader = LocalVectorStore(store_dir=folder.parent)
    got = {n.unique_id: n for n in reader.get(list(expected), folder.name)}
    assert reader.count(folder.name) == len(expected) == len(got)
    for node_id, node in expected.items():
        assert (got[node_id].content, got[node_id].metadata) == (node.content, node.metadata)
        assert np.array_equal(got[node_id].vector, node.vector)
    reader.close()
    meta = published(folder)
    prefix = folder / snap_name(meta["generation"])
    every_row = {**meta["snapshot"], "dead": []}  # the holes too, as the files hold them
    batch = read_snapshot(prefix, every_row, meta["dimensions"])  # verifies every checksum
    again = folder.parent / "again"
    rows = (batch.ids, batch.contents, batch.metadatas)
    write_snapshot_from(again, rows, [np.ascontiguousarray(batch.vectors)], batch.dimensions, dead=meta["snapshot"].get("dead"))
    for suffix in (".json", ".f32"):
        assert prefix.with_suffix(suffix).read_bytes() == again.with_suffix(suffix).read_bytes()
    assert read_ids(prefix.with_suffix(".ids"), len(batch.ids)) == list(batch.ids)  # the id cache covers copied rows too
    for cache in (".ids", ".rix"):  # extended from the base's, yet what a full rewrite writes
        assert prefix.with_suffix(cache).read_bytes() == again.with_suffix(cache).read_bytes()
    for suffix in (".json", ".f32", ".nrm", ".ids", ".rix"):
        again.with_suffix(suffix).unlink()


def fill(tmp_path, n: int, **kw) -> dict[str, VectorNode]:
    """Workspace "ws" under ``tmp_path`` holding n0..n{n-1}, closed (so a snapshot holds them); returns them by id."""
    s = LocalVectorStore(store_dir=tmp_path, **kw)
    s.create_workspace("ws")
    expected = {f"n{i}": make(i) for i in range(n)}
    s.insert(list(expected.values()), "ws")
    s.close()
    return expected


def reopened_sees(tmp_path, expected: dict[str, VectorNode], gone: list[str], **kw) -> None:
    """A fresh store holds ``expected`` and none of ``gone``, by count, get, iteration and search."""
    s = LocalVectorStore(store_dir=tmp_path, **kw)
    assert s.count("ws") == len(expected)
    assert s.get(gone, "ws") == []
    got = {n.unique_id: n for n in s.get(list(expected), "ws")}
    assert {k: (n.content, n.metadata) for k, n in got.items()} == {k: (n.content, n.metadata) for k, n in expected.items()}
    assert all(np.array_equal(got[k].vector, n.vector) for k, n in expected.items())
    listed = [n.unique_id for n in s.iter_workspace_nodes("ws")]
    assert sorted(listed) == sorted(expected)  # each once
    for node_id in gone:  # a deleted node's own vector finds something else
        vector = make(int(node_id[1:])).vector
        assert node_id not in [h.unique_id for h in s.search_by_vector(vector, "ws", top_k=5)]
    s.close()


def reopened_store(tmp_path, monkeypatch, index: str | None, lazy: bool, n: int = 1000) -> tuple:
    """Workspace "ws" filled with n nodes and closed, then opened again (rows read on demand if ``lazy``):
    (the store, the nodes by id, the store's keyword arguments, the inode of the snapshot's vector file)."""
    if lazy:
        monkeypatch.setattr(local, "VERIFY_AT_OPEN_BYTES", 0)
    kw = {"index": index} if index else {}
    expected = fill(tmp_path, n, **kw)
    inode = vectors_inode(tmp_path / "ws")
    return LocalVectorStore(store_dir=tmp_path, **kw), expected, kw, inode
