"""The local backend under damage, failures and other processes (issue 13; docs/reliability.md lists them).

Each test is one finding of the reliability review, at a size a user would see, and
checks what the user would check: the error and the file it names, the nodes left,
the files on disk. Longer injections run in ``tests/reliability/test_local_faults.py``.
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

from vecbook import (
    CorruptedFileError,
    DimensionMismatchError,
    LocalVectorStore,
    LockTimeoutError,
    StorageError,
    StoreCorruptedError,
    SymlinkError,
    VectorNode,
    WorkspaceNotFoundError,
)
from vecbook.__main__ import main
from vecbook.stores import local
from vecbook.stores.engine.batch import NodeBatch
from vecbook.stores.engine.table import NodeTable
from vecbook.stores.local.logfile import scan_frames

DIMS = 16


def vec(i: int, dims: int = DIMS) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(dims).astype(np.float32)


def node(i: int, prefix: str = "n", dims: int = DIMS) -> VectorNode:
    return VectorNode(unique_id=f"{prefix}{i}", content=f"text {prefix}{i}", metadata={"i": i, "p": prefix}, vector=vec(i, dims))


def frames_of_ten(path: Path, frames: int = 100) -> LocalVectorStore:
    """A workspace 'ws' written by ``frames`` inserts of 10 nodes (one log frame each), then closed."""
    s = LocalVectorStore(store_dir=path)
    s.create_workspace("ws")
    for f in range(frames):
        s.insert([node(10 * f + i) for i in range(10)], "ws")
    s.close()
    return s


def compacted(path: Path, n: int = 3000, in_log: int = 0) -> Path:
    """A workspace 'ws' with ``n`` nodes in a snapshot (generation 1) and ``in_log`` more in its log."""
    old = local.MIN_COMPACT_BYTES
    local.MIN_COMPACT_BYTES = 0
    try:
        s = LocalVectorStore(store_dir=path)
        s.create_workspace("ws")
        s.insert([node(i) for i in range(n)], "ws")
        s.wait_for_compaction()
    finally:
        local.MIN_COMPACT_BYTES = old
    for i in range(in_log):
        s.insert(node(n + i), "ws")
    s.close()
    assert json.loads((path / "ws" / "meta.json").read_text())["generation"] == 1
    return path / "ws"


def frame_bounds(log: Path) -> list[tuple[int, int]]:
    """(start, end) of every frame of a log."""
    return [(f.start, f.end) for f in scan_frames(log.read_bytes())]


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def ids(store: LocalVectorStore, ws: str = "ws") -> set[str]:
    return set(store.read_columns(ws).ids)


# ---- 1: a damaged log frame that is not the tail --------------------------------------------------


def test_a_flipped_bit_in_an_early_frame_is_reported_not_hidden(tmp_path):
    frames_of_ten(tmp_path)
    log = tmp_path / "ws" / "log-000000.bin"
    start, _ = frame_bounds(log)[10]
    flip(log, start + 40)  # inside frame 10's payload; frames 11..99 are intact
    damaged = log.read_bytes()
    with pytest.raises(CorruptedFileError) as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(log) and err.value.offset == start
    assert f"offset {start}" in str(err.value) and "repair" in str(err.value)
    with pytest.raises(CorruptedFileError):  # a writer neither truncates nor appends past it
        LocalVectorStore(store_dir=tmp_path).insert(node(5000), "ws")
    assert log.read_bytes() == damaged


def test_a_bad_last_frame_is_a_torn_tail_and_is_dropped(tmp_path):
    frames_of_ten(tmp_path, frames=20)
    log = tmp_path / "ws" / "log-000000.bin"
    flip(log, log.stat().st_size - 5)  # the last frame fails its checksum, nothing after it
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.count("ws") == 190
    s.insert(node(9999), "ws")
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 191


def test_repair_keeps_every_intact_frame_and_a_copy_of_the_damaged_log(tmp_path):
    frames_of_ten(tmp_path)
    log = tmp_path / "ws" / "log-000000.bin"
    start, end = frame_bounds(log)[10]
    flip(log, start + 40)
    damaged = log.read_bytes()
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and report["nodes"] == 990 and report["skipped_log_bytes"] == end - start
    assert any(f"bytes {start}-{end}" in p for p in report["problems"])
    assert (Path(report["backup"]) / "log-000000.bin").read_bytes() == damaged
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(1000)} - {f"n{i}" for i in range(100, 110)}
    got = s.get("n555", "ws")[0]
    assert got.vector.tobytes() == vec(555).tobytes() and got.metadata == {"i": 555, "p": "n"}
    s.insert(node(5000), "ws")
    assert LocalVectorStore(store_dir=tmp_path).repair("ws")["repaired"] is False
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 991


def test_repair_from_the_command_line(tmp_path, capsys):
    frames_of_ten(tmp_path, frames=30)
    log = tmp_path / "ws" / "log-000000.bin"
    flip(log, 200)
    assert main(["repair", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ws: repaired, 290 nodes kept" in out and ".damaged" in out
    assert main(["repair", str(tmp_path), "ws", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repaired"] is False
    assert main(["repair", str(tmp_path), "nope"]) == 1


# ---- 2: snapshots carry checksums -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".f32", ".json"])
def test_a_flipped_bit_anywhere_in_a_snapshot_is_reported(tmp_path, suffix):
    folder = compacted(tmp_path, n=500)
    snap = folder / f"snap-000001{suffix}"
    good = snap.read_bytes()
    rng = np.random.default_rng(7)
    for offset in rng.integers(0, len(good), 25).tolist():
        flip(snap, offset, int(rng.integers(0, 8)))
        with pytest.raises(CorruptedFileError) as err:
            LocalVectorStore(store_dir=tmp_path).count("ws")
        assert err.value.path == str(snap)
        snap.write_bytes(good)
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 500


def test_repair_keeps_the_rows_of_intact_snapshot_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "SNAPSHOT_CHUNK_BYTES", 64 * 1024)  # 1,024 vectors of 16 floats per checksum
    folder = compacted(tmp_path, n=3000, in_log=5)
    flip(folder / "snap-000001.f32", 64 * 1024 + 100)  # in rows 1024..2047
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and report["lost_nodes"] == 1024 and len(report["lost_ids"]) == 1024
    assert set(report["lost_ids"]) == {f"n{i}" for i in range(1024, 2048)}
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(3005)} - set(report["lost_ids"])
    assert s.get("n2999", "ws")[0].vector.tobytes() == vec(2999).tobytes()


def test_a_store_of_format_1_still_opens_and_moves_to_format_2(tmp_path, monkeypatch):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "LOCK").touch()
    rows = [node(i) for i in range(50)]
    columns = {"dimensions": DIMS, "ids": [n.unique_id for n in rows], "contents": [n.content for n in rows], "metadatas": [n.metadata for n in rows]}
    (folder / "snap-000001.json").write_text(json.dumps(columns))
    (folder / "snap-000001.f32").write_bytes(np.stack([n.vector for n in rows]).astype("<f4").tobytes())
    (folder / "log-000001.bin").write_bytes(b"")
    (folder / "meta.json").write_text(json.dumps({"format": 1, "id": "abc", "generation": 1, "dimensions": DIMS}))
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(50)}
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    s.insert([node(i) for i in range(50, 100)], "ws")
    s.wait_for_compaction()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == 2 and meta["generation"] == 2
    assert ids(LocalVectorStore(store_dir=tmp_path)) == {f"n{i}" for i in range(100)}


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


@pytest.mark.parametrize("where, code", [("fsync", errno.EIO), ("write", errno.ENOSPC)])
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
            if where == "write":
                real(fd, args[0][:100])  # part of the frame reaches the file first
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


# ---- 6: meta.json and logs damaged or missing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace('"generation"', '"generatinn"'),
        lambda t: t.replace('"id"', '"hd"'),
        lambda t: t.replace('"generation": 0', '"generation": "0"'),
        lambda t: t.replace('"generation": 0', '"generation": -1'),
        lambda t: t.replace('"dimensions": 16', '"dimensions": 17'),
        lambda t: "[1]",
        lambda t: "null",
        lambda t: t[: len(t) // 2],
    ],
    ids=["key-flip", "id-flip", "string", "negative", "dims", "list", "null", "truncated"],
)
def test_a_damaged_meta_json_is_reported_naming_it(tmp_path, damage):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws", dimensions=DIMS)
    s.insert(node(1), "ws")
    meta = tmp_path / "ws" / "meta.json"
    meta.write_text(damage(meta.read_text()))
    with pytest.raises(CorruptedFileError) as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(meta)


def test_a_deleted_meta_json_does_not_make_the_workspace_vanish(tmp_path):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert([node(i) for i in range(20)], "ws")
    (tmp_path / "ws" / "meta.json").unlink()
    fresh = LocalVectorStore(store_dir=tmp_path)
    assert fresh.list_workspaces() == ["ws"] and fresh.exist_workspace("ws")
    for store in (s, fresh):  # open in RAM or not
        with pytest.raises(CorruptedFileError, match="meta.json is missing") as err:
            store.count("ws")
        assert err.value.path == str(tmp_path / "ws" / "meta.json")
    assert fresh.create_workspace("ws") is False  # nothing is overwritten
    report = fresh.repair("ws")
    assert report["repaired"] and report["nodes"] == 20
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 20


def test_a_deleted_log_is_reported_naming_it(tmp_path):
    folder = compacted(tmp_path, n=100, in_log=3)
    (folder / "log-000001.bin").unlink()
    with pytest.raises(CorruptedFileError) as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(folder / "log-000001.bin")
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and report["nodes"] == 100  # the snapshot's; the log's 3 writes are gone


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

    def full(prefix, batch, *rest):
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
