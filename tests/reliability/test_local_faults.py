"""Fault and corruption injection into the local backend, at CI size; the soak runs them longer.

``VECBOOK_CORRUPTION_TRIALS`` (default 40; soak 1000): a random bit flipped in a random file
of a workspace is reported naming that file (one in the last log frame looks like a torn
tail: only that write is lost), and ``repair`` never returns wrong data.
``VECBOOK_FAULT_TRIALS`` (default 4; soak 100): random EIO/ENOSPC in appends and fsyncs,
compactions included: a call that raised has not happened, in this store and a fresh one.
``VECBOOK_SIGINT_TRIALS`` (default 3; soak 30): Ctrl-C during big inserts (issue 13 #5).
``VECBOOK_READER_RACE_SECONDS`` (default 2; soak 30): readers in other processes during compactions.
Also: a real per-file size limit as a full disk, a SIGSTOPped lock holder, a store this user cannot write.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.children import CHILD_ENV, ROOT
from vecbook import (
    CorruptedFileError,
    LocalVectorStore,
    LockTimeoutError,
    StorageError,
    VectorNode,
)
from vecbook.stores import local
from vecbook.stores.local import snapshot_files
from vecbook.stores.local.logfile import scan_frames

DIMS = 16
LINE_ROWS, CHUNK_BYTES = 100, 4096  # small checksum granules, so damage is local


def _child(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.local_fault_child", *args], env=CHILD_ENV, cwd=ROOT, text=True, **kwargs)


def _vector(key: str) -> np.ndarray:
    return np.random.default_rng(abs(hash(key)) % (1 << 32)).standard_normal(DIMS).astype(np.float32)


def _apply(model: dict, op: tuple) -> None:
    kind, items = op
    if kind == "upsert":
        model.update(items)
    else:
        for i in items:
            model.pop(i, None)


def _write(store: LocalVectorStore, op: tuple) -> None:
    kind, items = op
    if kind == "upsert":
        store.insert([VectorNode(unique_id=i, content=c, metadata={"c": c}, vector=_vector(c)) for i, c in items.items()], "ws")
    else:
        store.delete(items, "ws")


def _ops(rng: random.Random, model: dict, count: int, fresh: list[int]) -> list[tuple]:
    """Upserts of new ids, updates and deletes of present ones (each op changes something: one frame each)."""
    ops = []
    shadow = dict(model)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.5 or len(shadow) < 10:
            items = {f"n{fresh[0] + k}": f"v{rng.random()}" for k in range(rng.randint(1, 5))}
            fresh[0] += len(items)
            op = ("upsert", items)
        elif roll < 0.8:
            op = ("upsert", {i: f"v{rng.random()}" for i in rng.sample(sorted(shadow), rng.randint(1, 4))})
        else:
            op = ("delete", rng.sample(sorted(shadow), rng.randint(1, 3)))
        _apply(shadow, op)
        ops.append(op)
    return ops


def _state(store: LocalVectorStore) -> dict:
    columns = store.read_columns("ws")
    for c, md, v in zip(columns.contents, columns.metadatas, columns.vectors):
        assert md == {"c": c} and v.tobytes() == _vector(c).tobytes(), "a node whose parts disagree: wrong data served"
    return dict(zip(columns.ids, columns.contents))


# ---- bit flips -----------------------------------------------------------------------------------------


@pytest.fixture
def small_granules(monkeypatch):
    monkeypatch.setattr(local, "SNAPSHOT_LINE_ROWS", LINE_ROWS)
    monkeypatch.setattr(local, "SNAPSHOT_CHUNK_BYTES", CHUNK_BYTES)


def _pristine(folder: Path, monkeypatch) -> tuple[dict, list[tuple], list[tuple[int, int]]]:
    """A workspace: 600 nodes in snapshot 1, then 30 writes in its log. Returns (snapshot model, log ops, frame bounds)."""
    rng = random.Random(0)
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    store = LocalVectorStore(store_dir=folder)
    store.create_workspace("ws")
    first = ("upsert", {f"n{i}": f"v{rng.random()}" for i in range(600)})
    _write(store, first)
    store.wait_for_compaction()
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 1 << 40)
    base: dict = {}
    _apply(base, first)
    ops = _ops(rng, base, 30, [600])
    for op in ops:
        _write(store, op)
    store.close()
    log = folder / "ws" / "log-000001.bin"
    bounds = [(f.start, f.end) for f in scan_frames(log.read_bytes())]
    assert len(bounds) == len(ops)
    return base, ops, bounds


def _model(base: dict, ops: list[tuple], skip: int | None = None) -> dict:
    model = dict(base)
    for k, op in enumerate(ops):
        if k != skip:
            _apply(model, op)
    return model


def test_a_flipped_bit_is_reported_naming_its_file_and_repair_serves_no_wrong_data(tmp_path, monkeypatch, small_granules):
    base, ops, bounds = _pristine(tmp_path / "pristine", monkeypatch)
    full = _model(base, ops)
    files = ["meta.json", "snap-000001.json", "snap-000001.f32", "log-000001.bin"]
    seen = {name: 0 for name in files}
    for trial in range(int(os.environ.get("VECBOOK_CORRUPTION_TRIALS", "40"))):
        rng = random.Random(trial)
        store_dir = tmp_path / f"t{trial}"
        shutil.copytree(tmp_path / "pristine", store_dir)
        name = files[trial % len(files)]
        path = store_dir / "ws" / name
        data = bytearray(path.read_bytes())
        offset = rng.randrange(len(data))
        data[offset] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        seen[name] += 1
        last_frame = name == "log-000001.bin" and offset >= bounds[-1][0]
        if last_frame:  # a torn tail: the last write is dropped, nothing else
            assert _state(LocalVectorStore(store_dir=store_dir)) == _model(base, ops, skip=len(ops) - 1), f"trial {trial}"
            continue
        with pytest.raises(CorruptedFileError) as err:
            LocalVectorStore(store_dir=store_dir).count("ws")
        assert err.value.path == str(path), f"trial {trial}: flipped {name}@{offset}, error names {err.value.path}"
        if name == "log-000001.bin":
            frame = next(k for k, (start, end) in enumerate(bounds) if start <= offset < end)
            assert err.value.offset == bounds[frame][0]
        with pytest.raises(CorruptedFileError):
            LocalVectorStore(store_dir=store_dir).insert(VectorNode(unique_id="x", vector=np.ones(DIMS)), "ws")
        assert path.read_bytes() == bytes(data), "a failed open or write changed the damaged file"
        report = LocalVectorStore(store_dir=store_dir).repair("ws")
        repaired = _state(LocalVectorStore(store_dir=store_dir))
        assert report["repaired"] and Path(report["backup"], name).read_bytes() == bytes(data)
        if name == "log-000001.bin":
            assert repaired == _model(base, ops, skip=frame), f"trial {trial}"
        elif name == "meta.json":
            assert repaired == full, f"trial {trial}"
        else:
            assert all(full.get(i) == c for i, c in repaired.items()), f"trial {trial}: repair kept a node that is not as written"
            assert len(full) - len(repaired) <= LINE_ROWS, f"trial {trial}: lost more than one granule"
    assert all(seen.values())


# ---- write failures --------------------------------------------------------------------------------------


def test_a_call_that_raised_has_not_happened(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 8 << 10)  # compactions fail too, and back off
    monkeypatch.setattr(local, "COMPACT_BACKOFF", 0.001)
    real = {name: getattr(os, name) for name in ("pwrite", "fsync", "write")}
    failures = {"n": 0}
    for trial in range(int(os.environ.get("VECBOOK_FAULT_TRIALS", "4"))):
        rng = random.Random(trial)
        folder = tmp_path / f"t{trial}"
        store = LocalVectorStore(store_dir=folder)
        store.create_workspace("ws")

        def flaky(name, rng=rng, folder=folder):
            def call(fd, *args):
                if rng.random() < 0.15 and os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                    failures["n"] += 1
                    code = rng.choice([errno.EIO, errno.ENOSPC])
                    if name != "fsync" and rng.random() < 0.5:
                        real[name](fd, args[0][: len(args[0]) // 2], *args[1:])  # part of it lands first
                    raise OSError(code, os.strerror(code))
                return real[name](fd, *args)

            return call

        model: dict = {}
        ops = _ops(rng, model, 120, [0])
        for name in real:
            monkeypatch.setattr(os, name, flaky(name))
        try:
            for op in ops:
                try:
                    _write(store, op)
                except StorageError as exc:
                    assert exc.path.startswith(str(folder)) and exc.errno in (errno.EIO, errno.ENOSPC)
                else:
                    _apply(model, op)
            store.wait_for_compaction()
        finally:
            for name, fn in real.items():
                monkeypatch.setattr(os, name, fn)
        assert _state(store) == model, f"trial {trial}: the same store"
        assert _state(LocalVectorStore(store_dir=folder)) == model, f"trial {trial}: a fresh store"
    assert failures["n"] > 10


def test_a_full_disk_fails_writes_with_storage_error_and_keeps_every_acknowledged_one(tmp_path):
    child = _child("fsize", str(tmp_path), str(96 << 10), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    acked, failed, pending = set(), [], None
    for line in out.splitlines():
        if line.startswith("BEGIN "):
            pending = json.loads(line[6:])
        elif line == "ACK":
            acked.update(pending)
        elif line.startswith("FAIL "):
            failed.append(line.split(" ", 3)[1:])
    assert acked and failed
    assert all(kind == "StorageError" and code == str(errno.EFBIG) and path.startswith(str(tmp_path)) for kind, code, path in failed)
    assert err.count("compaction failed") <= 1  # a warning once, then backing off
    assert set(LocalVectorStore(store_dir=tmp_path).read_columns("ws").ids) == acked


# ---- the lock of a stopped process ---------------------------------------------------------------------------


def test_a_stopped_lock_holder_times_writers_out_and_never_blocks_readers(tmp_path):
    store = LocalVectorStore(store_dir=tmp_path, lock_timeout=0.5)
    store.create_workspace("ws")
    store.insert(VectorNode(unique_id="a", vector=np.ones(DIMS)), "ws")
    holder = _child("hold", str(tmp_path), stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        os.kill(holder.pid, signal.SIGSTOP)  # a writer frozen while it holds the lock
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as err:
            store.insert(VectorNode(unique_id="b", vector=np.ones(DIMS)), "ws")
        assert 0.5 <= time.monotonic() - started < 3 and err.value.pid == holder.pid
        started = time.monotonic()
        assert store.count("ws") == 1 and LocalVectorStore(store_dir=tmp_path).count("ws") == 1
        assert time.monotonic() - started < 0.5
    finally:
        holder.kill()
        holder.wait()
    store.insert(VectorNode(unique_id="b", vector=np.ones(DIMS)), "ws")  # a killed holder frees the lock at once
    assert store.count("ws") == 2


# ---- Ctrl-C during big inserts (issue 13 #5) ----------------------------------------------------------------------


def test_ctrl_c_during_big_inserts_leaves_the_store_usable_and_equal_to_its_files(tmp_path):
    trials = int(os.environ.get("VECBOOK_SIGINT_TRIALS", "3"))
    child = _child("sigint", str(tmp_path), str(trials), "50000", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err
    results = [json.loads(line[6:]) for line in out.splitlines() if line.startswith("TRIAL ")]
    assert len(results) == trials
    for result in results:
        assert result["errors"] == [], result
        before, after = result["counts"]
        assert before in (10, 50010) and after == before + 1 == result["fresh"], result


# ---- readers in other processes during compactions ------------------------------------------------------------------


def test_readers_in_other_processes_never_fail_during_compactions(tmp_path, monkeypatch):
    seconds = float(os.environ.get("VECBOOK_READER_RACE_SECONDS", "2"))
    writer = LocalVectorStore(store_dir=tmp_path)
    writer.create_workspace("ws")
    writer.insert([VectorNode(unique_id=f"b{i}", content="word " * 40, vector=[float(i)]) for i in range(20000)], "ws")
    script = (
        "import sys, time, vecbook\n"
        "errors, reads, deadline = [], 0, time.monotonic() + float(sys.argv[2])\n"
        "while time.monotonic() < deadline:\n"
        "    try:\n"
        "        vecbook.LocalVectorStore(store_dir=sys.argv[1]).count('ws'); reads += 1\n"
        "    except Exception as exc:\n"
        "        errors.append(repr(exc))\n"
        "print(reads, len(errors), errors[:1])\n"
    )
    readers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(seconds)], env=CHILD_ENV, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)  # every write publishes a generation
    k = 0
    while any(r.poll() is None for r in readers):
        writer.insert([VectorNode(unique_id=f"w{k}-{i}", content="x " * 40, vector=[1.0]) for i in range(50)], "ws")
        k += 1
    writer.wait_for_compaction()
    for reader in readers:
        reads, errors, example = reader.communicate()[0].split(" ", 2)
        assert int(errors) == 0 and int(reads) > 0, example
    assert json.loads((tmp_path / "ws" / "meta.json").read_text())["generation"] > 2


def test_readers_see_every_acknowledged_batch_whole_while_compactions_extend_the_vector_file(tmp_path, monkeypatch):
    """A bulk load (new ids only, so each compaction extends the published ``.f32``) beside readers in other
    processes: one store kept open and following the writer, one opened afresh for each read. Every read
    checks the vectors of a whole batch it knows was acknowledged, and that counts never go back."""
    seconds = float(os.environ.get("VECBOOK_READER_RACE_SECONDS", "2"))
    batch = 200
    writer = LocalVectorStore(store_dir=tmp_path)
    writer.create_workspace("ws")
    script = (
        "import sys, time, random, numpy as np, vecbook\n"
        "folder, seconds, keep = sys.argv[1], float(sys.argv[2]), sys.argv[3] == 'keep'\n"
        f"batch = {batch}\n"
        "kept = vecbook.LocalVectorStore(store_dir=folder) if keep else None\n"
        "rng, problems, reads, last = random.Random(1), [], 0, 0\n"
        "deadline = time.monotonic() + seconds\n"
        "while time.monotonic() < deadline:\n"
        "    store = kept or vecbook.LocalVectorStore(store_dir=folder)\n"
        "    try:\n"
        "        n = store.count('ws')\n"
        "        if n < last or n % batch:\n"
        "            problems.append(f'count {n} after {last}')\n"
        "        last = n\n"
        "        if n:\n"
        "            k = rng.choice([n // batch - 1, rng.randrange(n // batch)])\n"
        "            ids = [f'b{k}-{i}' for i in range(batch)]\n"
        "            got = {node.unique_id: node.vector for node in store.get(ids, 'ws')}\n"
        "            want = {f'b{k}-{i}': [float(k), float(i), 1.0] for i in range(batch)}\n"
        "            if set(got) != set(want) or any(list(map(float, got[i])) != want[i] for i in want):\n"
        "                problems.append(f'batch {k} of {n // batch}: {len(got)} nodes, not all as written')\n"
        "        reads += 1\n"
        "    except Exception as exc:\n"
        "        problems.append(repr(exc))\n"
        "    if not keep:\n"
        "        store.close()\n"
        "print(reads, len(problems), problems[:1])\n"
    )
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)  # every write publishes a generation
    extended, vector_file = [0], snapshot_files._vector_file

    def counted(prefix, base):
        extended[0] += base is not None
        return vector_file(prefix, base)

    monkeypatch.setattr(snapshot_files, "_vector_file", counted)
    k = 0

    def write_batch() -> None:
        nonlocal k
        writer.insert([VectorNode(unique_id=f"b{k}-{i}", content="x", vector=[float(k), float(i), 1.0]) for i in range(batch)], "ws")
        k += 1

    write_batch()
    readers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(seconds), mode], env=CHILD_ENV, stdout=subprocess.PIPE, text=True)
               for mode in ("keep", "fresh")]
    while any(r.poll() is None for r in readers):
        write_batch()
    writer.wait_for_compaction()
    for reader in readers:
        reads, problems, example = reader.communicate()[0].split(" ", 2)
        assert int(problems) == 0 and int(reads) > 0, example
    assert extended[0] > 2, "the compactions did not extend the vector file: this test checks nothing new"
    writer.close()
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == k * batch


# ---- a store this user may read but not write ----------------------------------------------------------------


@pytest.fixture
def shared_dir():
    """A folder other users can reach (pytest's tmp_path is private to its owner)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="vecbook-ro-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_read_only_store_serves_reads_and_refuses_writes_with_storage_error(shared_dir):
    """A store this process may read but not write: root-owned files read by 'nobody', or a chmod 555 folder."""
    store = LocalVectorStore(store_dir=shared_dir)
    store.create_workspace("ws")
    store.insert(VectorNode(unique_id="a", vector=np.ones(DIMS)), "ws")
    store.close()
    script = (
        "import os, sys, numpy as np, vecbook\n"
        "if os.geteuid() == 0:\n"
        "    os.setgid(65534); os.setuid(65534)  # nobody, after every import\n"
        "s = vecbook.LocalVectorStore(store_dir=sys.argv[1])\n"
        "print(s.count('ws'), s.list_workspaces())\n"
        "for call in (lambda: s.insert(vecbook.VectorNode(unique_id='b', vector=np.ones(16)), 'ws'), lambda: s.create_workspace('new')):\n"
        "    try:\n"
        "        call(); print('wrote')\n"
        "    except vecbook.StorageError as exc:\n"
        "        print(type(exc).__name__, exc.errno, exc.path)\n"
    )
    folders = (shared_dir, shared_dir / "ws")
    if os.geteuid() != 0:
        for folder in folders:
            folder.chmod(0o555)
    try:
        out = subprocess.run([sys.executable, "-c", script, str(shared_dir)], env=CHILD_ENV, capture_output=True, text=True, timeout=60, check=False)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0] == "1 ['ws']", out.stderr
    assert lines[1] == f"StorageError {errno.EACCES} {shared_dir / 'ws' / 'LOCK'}"
    assert lines[2] == f"StorageError {errno.EACCES} {shared_dir}"
    assert LocalVectorStore(store_dir=shared_dir).count("ws") == 1
