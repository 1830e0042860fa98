"""The local backend under failures, locks and other processes (issue 13; docs/reliability.md lists them).

Each test is one finding of the reliability review, at a size a user would see, and
checks what the user would check: the error and the file it names, the nodes left,
the files on disk. Damaged files are in ``test_local_damage.py``; longer injections run in
``tests/reliability/test_local_faults.py``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.local_files import (
    DIMS,
    compacted,
    ids,
    node,
    vec,
)
from vecbook import (
    DimensionMismatchError,
    LocalVectorStore,
    LockTimeoutError,
    StorageError,
    StoreCorruptedError,
    SymlinkError,
    VectorNode,
    WorkspaceNotFoundError,
)
from vecbook.stores import local
from vecbook.stores.engine.batch import NodeBatch
from vecbook.stores.engine.table import NodeTable

# ---- 3: readers and a concurrent compaction -----------------------------------------------------------


def test_readers_never_fail_while_another_store_compacts(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)  # every write publishes a generation
    writer = LocalVectorStore(store_dir=tmp_path)
    writer.create_workspace("ws")
    writer.insert([VectorNode(unique_id=f"b{i}", content="word " * 40, vector=[float(i)]) for i in range(20000)], "ws")
    writer.wait_for_compaction()
    stop, errors, counts = threading.Event(), [], []

    def write() -> None:
        k = 0
        while not stop.is_set():
            writer.insert([VectorNode(unique_id=f"w{k}-{i}", content="x " * 40, vector=[1.0]) for i in range(50)], "ws")
            k += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                counts.append(LocalVectorStore(store_dir=tmp_path).count("ws"))  # a fresh open each time
            except Exception as exc:  # noqa: BLE001 - what we count
                errors.append(exc)
    finally:
        stop.set()
        thread.join()
        writer.wait_for_compaction()
    generation = json.loads((tmp_path / "ws" / "meta.json").read_text())["generation"]
    assert errors == [] and len(counts) >= 5 and generation > 3
    assert counts == sorted(counts) and counts[0] >= 20000


# ---- 4: exception-safe in-RAM updates ---------------------------------------------------------------------


def test_a_memory_error_while_the_table_grows_leaves_it_as_it_was(monkeypatch):
    table = NodeTable(DIMS)
    table.upsert(NodeBatch([f"a{i}" for i in range(1000)], [""] * 1000, [{}] * 1000, np.ones((1000, DIMS), dtype=np.float32)))
    before = (list(table.ids), table.vectors.copy(), len(table))
    real_zeros = np.zeros

    def failing_zeros(*args, **kwargs):
        raise MemoryError("injected")

    monkeypatch.setattr(np, "zeros", failing_zeros)  # the growth of sq_norms / alive
    with pytest.raises(MemoryError):
        table.upsert(NodeBatch([f"b{i}" for i in range(500)], [""] * 500, [{}] * 500, np.full((500, DIMS), 2, dtype=np.float32)))
    monkeypatch.setattr(np, "zeros", real_zeros)
    assert table.ids == before[0] and len(table) == before[2] and np.array_equal(table.vectors, before[1])
    table.upsert(NodeBatch(["c"], [""], [{}], np.full((1, DIMS), 3, dtype=np.float32)))
    assert len(table) == 1001 and table.search(np.full((1, DIMS), 3, dtype=np.float32), 1, None, "euclidean")[0].tolist() == [1000]


def test_an_insert_whose_apply_fails_has_not_happened(tmp_path, monkeypatch):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert([node(i) for i in range(100)], "ws")
    log = tmp_path / "ws" / "log-000000.bin"
    size = log.stat().st_size
    real = NodeTable.upsert

    def failing(self, batch):
        if "boom" in batch.ids:
            raise MemoryError("injected")
        return real(self, batch)

    monkeypatch.setattr(NodeTable, "upsert", failing)
    with pytest.raises(MemoryError):
        s.insert([VectorNode(unique_id="boom", vector=vec(1))], "ws")
    assert log.stat().st_size == size
    assert s.count("ws") == 100 and s.get("boom", "ws") == []
    s.insert(node(100), "ws")
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 101


# ---- 5: a failed fsync or append is rolled back ----------------------------------------------------------


@pytest.mark.parametrize("where, code", [("fsync", errno.EIO), ("pwrite", errno.ENOSPC)])
def test_an_insert_whose_write_fails_raises_storage_error_and_leaves_nothing(tmp_path, monkeypatch, where, code):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert(node(0), "ws")
    log = tmp_path / "ws" / "log-000000.bin"
    size = log.stat().st_size
    real = getattr(os, where)
    calls = []

    def failing(fd, *args):
        if not calls and os.readlink(f"/proc/self/fd/{fd}") == str(log):
            calls.append(1)
            if where == "pwrite":
                real(fd, args[0][:100], args[1])  # part of the frame reaches the file first
            raise OSError(code, os.strerror(code))
        return real(fd, *args)

    monkeypatch.setattr(os, where, failing)
    with pytest.raises(StorageError) as err:
        s.insert(node(1), "ws")
    monkeypatch.setattr(os, where, real)
    assert isinstance(err.value, OSError) and err.value.errno == code and err.value.path == str(log)
    assert log.stat().st_size == size
    assert s.count("ws") == 1 and s.get("n1", "ws") == []
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 1
    s.insert(node(2), "ws")
    assert ids(LocalVectorStore(store_dir=tmp_path)) == {"n0", "n2"}


def test_a_reader_of_the_process_sees_a_write_only_once_its_fsync_is_done(tmp_path, monkeypatch):
    """The table changes while the frame is fsynced (log_append.py): readers must wait for the fsync."""
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert([node(i) for i in range(10)], "ws")
    log = tmp_path / "ws" / "log-000000.bin"
    real = os.fsync
    seen, reader = [], []

    def slow_fsync(fd):
        if not reader and os.readlink(f"/proc/self/fd/{fd}") == str(log):
            reader.append(threading.Thread(target=lambda: seen.append(s.count("ws"))))
            reader[0].start()
            time.sleep(0.5)  # the helper applies the write meanwhile; the reader must not see it yet
            seen.append("fsynced")
        return real(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    s.insert([node(i) for i in range(10, 15)], "ws")
    monkeypatch.setattr(os, "fsync", real)
    reader[0].join(10)
    assert seen == ["fsynced", 15]


def test_a_reader_forgets_a_write_its_writer_took_back(tmp_path, monkeypatch):
    writer, reader = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    writer.create_workspace("ws")
    writer.insert(node(0), "ws")
    assert reader.count("ws") == 1
    real = os.fsync
    calls = []

    def fsync_after_a_read(fd):
        if not calls:
            calls.append(reader.count("ws"))  # the reader sees the frame before its fsync fails
            raise OSError(errno.EIO, "injected")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync_after_a_read)
    with pytest.raises(StorageError):
        writer.insert(VectorNode(unique_id="gone", content="same length", vector=vec(1)), "ws")
    monkeypatch.setattr(os, "fsync", real)
    writer.insert(VectorNode(unique_id="kept", content="same length", vector=vec(2)), "ws")  # a frame of the same size, same place
    assert calls == [2]
    assert ids(reader) == {"n0", "kept"}


# ---- 7: locks: reads never wait, writers wait lock_timeout ---------------------------------------------------------


def test_reads_never_wait_for_a_writer_stuck_behind_another_process(tmp_path):
    s = LocalVectorStore(store_dir=tmp_path, lock_timeout=3)
    s.create_workspace("ws")
    s.insert(node(0), "ws")
    with open(tmp_path / "ws" / "LOCK", "r+b") as other:  # another open file: for flock, another process
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        other.write(b"424242\n")
        other.flush()
        outcome = []
        writer = threading.Thread(target=lambda: outcome.append(_try(lambda: s.insert(node(1), "ws"))))
        writer.start()
        time.sleep(0.3)  # the writer waits for the lock now
        started = time.monotonic()
        assert s.count("ws") == 1 and s.get("n0", "ws")
        assert time.monotonic() - started < 0.5
        writer.join()
    assert isinstance(outcome[0], LockTimeoutError) and outcome[0].pid == 424242 and "424242" in str(outcome[0])
    assert s.count("ws") == 1
    s.insert(node(1), "ws")  # the lock is free again
    assert s.count("ws") == 2


def test_lock_timeout_is_checked(tmp_path):
    with pytest.raises(ValueError):
        LocalVectorStore(store_dir=tmp_path, lock_timeout=-1)
    assert LocalVectorStore(store_dir=tmp_path, lock_timeout=None).lock_timeout is None


def _try(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - handed back to the test
        return exc


# ---- 8: stale files of older generations and killed writers ----------------------------------------------------


def _litter(folder: Path) -> set[str]:
    names = {"log-000000.bin", "snap-000000.f32", "snap-000002.json", "log-000002.bin", ".meta-deadbeef.tmp", ".snap-999999999-abc.f32", "snap-000000.hnsw"}
    for name in names:
        (folder / name).write_bytes(b"x" * 1000)
    return names


@pytest.mark.parametrize("by", ["writer", "open"])
def test_files_of_other_generations_and_temp_files_are_removed(tmp_path, by):
    folder = compacted(tmp_path, n=200)
    expected = sorted(p.name for p in folder.iterdir())
    _litter(folder)
    s = LocalVectorStore(store_dir=tmp_path)
    if by == "writer":
        s.insert(node(999), "ws")
    else:
        s.count("ws")
    assert sorted(p.name for p in folder.iterdir()) == expected
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 200 + (by == "writer")


# ---- 9: the disk refuses -------------------------------------------------------------------------------------------


def test_a_write_the_file_system_refuses_is_a_storage_error_naming_the_file(tmp_path, monkeypatch):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    log = str(tmp_path / "ws" / "log-000000.bin")
    real = os.open

    def refusing(path, flags, *args, **kwargs):
        if str(path) == log and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(StorageError, match="permission denied") as err:
        s.insert(node(1), "ws")
    assert err.value.path == log and err.value.errno == errno.EACCES


def test_a_failing_compaction_warns_once_and_backs_off(tmp_path, monkeypatch, caplog):
    from vecbook.stores.local import compaction as store_module

    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    attempts = []
    real = store_module.write_snapshot_from

    def full(prefix, batch, *rest, **kwargs):
        attempts.append(1)
        raise OSError(errno.ENOSPC, "No space left on device", str(prefix))

    monkeypatch.setattr(store_module, "write_snapshot_from", full)
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    with caplog.at_level(logging.WARNING, logger="vecbook.local"):
        for i in range(20):
            s.insert(node(i), "ws")
            s.wait_for_compaction()
    warnings = [r for r in caplog.records if "compaction failed" in r.getMessage()]
    assert len(attempts) == 1 and len(warnings) == 1 and "the disk is full" in warnings[0].getMessage()
    assert s.count("ws") == 20 and not list((tmp_path / "ws").glob(".snap-*"))
    monkeypatch.setattr(store_module, "write_snapshot_from", real)
    monkeypatch.setattr(local, "COMPACT_BACKOFF", 0.0)
    s._state("ws").compact_retry_at = 0.0  # as if the back-off had passed
    s.insert(node(20), "ws")
    s.wait_for_compaction()
    assert json.loads((tmp_path / "ws" / "meta.json").read_text())["generation"] == 1
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 21


# ---- 12: symbolic links inside store_dir --------------------------------------------------------------------------


def test_a_symlinked_workspace_is_refused_and_its_data_kept(tmp_path, caplog):
    elsewhere = tmp_path / "elsewhere"
    s = LocalVectorStore(store_dir=elsewhere)
    s.create_workspace("real")
    s.insert(node(1), "real")
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "linked").symlink_to(elsewhere / "real")
    (store_dir / "loop").symlink_to(store_dir / "loop")
    t = LocalVectorStore(store_dir=store_dir)
    t.create_workspace("plain")
    with caplog.at_level(logging.WARNING, logger="vecbook.local"):
        assert t.list_workspaces() == ["plain"]
    assert sum("symbolic link" in r.getMessage() for r in caplog.records) == 2
    for call in (lambda: t.exist_workspace("linked"), lambda: t.count("linked"), lambda: t.delete_workspace("linked"), lambda: t.create_workspace("loop")):
        with pytest.raises(SymlinkError) as err:
            call()
        assert isinstance(err.value, OSError) and "symbolic link" in str(err.value)
    assert s.count("real") == 1 and LocalVectorStore(store_dir=elsewhere).count("real") == 1


# ---- issue 13 #6: deleted or re-created by another store ------------------------------------------------------------


def test_writes_to_a_workspace_another_store_deleted_raise_workspace_not_found(tmp_path):
    a, b = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    for call in (lambda: a.insert(node(2), "ws"), lambda: a.delete("n1", "ws"), lambda: a.count("ws"), lambda: a.search_by_vector(vec(0), "ws")):
        a.create_workspace("ws", dimensions=DIMS)
        a.insert(node(1), "ws")
        b.delete_workspace("ws")
        with pytest.raises(WorkspaceNotFoundError):
            call()
    assert not a.exist_workspace("ws")


def test_a_workspace_recreated_with_other_dimensions_is_usable_at_once(tmp_path):
    a, b = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    a.create_workspace("ws", dimensions=4)
    a.insert(VectorNode(unique_id="old", vector=np.ones(4)), "ws")
    assert b.count("ws") == 1  # open in b's RAM with 4 dimensions
    a.delete_workspace("ws")
    a.create_workspace("ws", dimensions=8)
    a.insert(VectorNode(unique_id="new", vector=np.ones(8)), "ws")
    b.insert(VectorNode(unique_id="x", vector=np.arange(8.0)), "ws")
    assert [n.unique_id for n in b.search_by_vector(np.arange(8.0), "ws", top_k=2)] == ["x", "new"]
    with pytest.raises(DimensionMismatchError):
        b.insert(VectorNode(unique_id="y", vector=np.ones(4)), "ws")
    assert ids(a) == {"new", "x"}


# ---- dumps beside workspaces (dump_name_clash) ------------------------------------------------------------------------


def test_a_dump_never_takes_a_workspace_name(tmp_path):
    s = LocalVectorStore(store_dir=tmp_path)
    for ws in ("notes", "notes.jsonl"):
        s.create_workspace(ws, dimensions=4)
        s.insert(VectorNode(unique_id=f"in-{ws}", vector=np.ones(4)), ws)
    dumped = s.dump_workspace("notes")
    assert dumped == {"size": 1, "path": str(tmp_path / ".dumps" / "notes.jsonl")}
    s.delete_workspace("notes.jsonl")
    assert s.create_workspace("notes.jsonl", dimensions=4) is True
    assert s.list_workspaces() == ["notes", "notes.jsonl"] and s.count("notes.jsonl") == 0
    s.load_workspace("restored", path=dumped["path"])
    assert ids(s, "restored") == {"in-notes"}


def test_an_unreadable_or_odd_store_never_raises_a_raw_error(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "log-000000.bin").write_bytes(b"")  # a folder that lost meta.json and LOCK
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.list_workspaces() == ["ws"]
    with pytest.raises(StoreCorruptedError):
        s.insert(node(1), "ws")
    assert s.delete_workspace("ws") is True and s.list_workspaces() == []
