"""Where a table's matrix lives: the local writer's in an unlinked scratch file (page cache), memory's in RAM."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode
from vecbook.stores.engine.matrix import FileMatrix, RamMatrix

DIMS = 384


def rss_anon() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


def unlinked_files_open_in(folder: Path) -> int:
    """Blocks (bytes) of files under ``folder`` this process holds open that have no name."""
    inodes = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            link, st = os.readlink(f"/proc/self/fd/{fd}"), os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith(str(folder.resolve())) and st.st_nlink == 0:
            inodes[st.st_ino] = st.st_blocks * 512
    return sum(inodes.values())


def nodes(start: int, n: int, rng) -> list[VectorNode]:
    vectors = rng.standard_normal((n, DIMS), dtype=np.float32)
    return [VectorNode(unique_id=f"n{start + i}", vector=v) for i, v in enumerate(vectors)]


def test_a_local_writer_holds_its_vectors_in_page_cache_not_anonymous_ram(tmp_path):
    rng = np.random.default_rng(0)
    store = LocalVectorStore(store_dir=tmp_path)
    store.create_workspace("ws")
    batches = [nodes(start, 20_000, rng) for start in range(0, 200_000, 20_000)]  # 307 MB of float32 in all
    before = rss_anon()
    for batch in batches:
        store.insert(batch, "ws")
    matrix_bytes = 200_000 * DIMS * 4
    assert rss_anon() - before < matrix_bytes * 3 / 4  # row lists and freed insert buffers malloc keeps; not the matrix
    assert unlinked_files_open_in(tmp_path / "ws") >= matrix_bytes  # the matrix, in a file without a name
    query = batches[7][123].vector
    assert store.search_by_vector(query, "ws", top_k=1)[0].unique_id == "n140123"
    store.close()
    assert not [p.name for p in (tmp_path / "ws").iterdir() if p.name.startswith(".")]  # no scratch, named or hidden


def test_a_file_matrix_grows_without_copying_and_older_views_stay_valid(tmp_path):
    storage = FileMatrix(tmp_path)
    first = storage.empty(1024, 8)
    first[:] = np.arange(1024 * 8, dtype=np.float32).reshape(1024, 8)
    grown = storage.grown(first, 1024, 5000)
    assert grown.shape == (5000, 8) and np.array_equal(grown[:1024], first)
    grown[3] = -1  # one file under both maps: a change through one shows through the other
    assert (first[3] == -1).all()
    assert list(tmp_path.iterdir()) == []  # the scratch has no name
    taken = storage.taken(grown, np.array([3, 10, 1023]))
    assert np.array_equal(taken, grown[[3, 10, 1023]])


def test_the_memory_backend_keeps_its_matrix_in_ram():
    store = MemoryVectorStore()
    store.create_workspace("ws")
    store.insert(nodes(0, 2000, np.random.default_rng(1)), "ws")
    table = store._tables["ws"].table
    assert isinstance(table.storage, RamMatrix) and isinstance(table.vectors.base, np.ndarray)


def test_a_forked_child_writing_the_store_leaves_the_parents_shared_map_alone(tmp_path):
    """The scratch is mapped shared, so a forked child shares the parent's pages: the child's writes must
    go through a table of its own (the store drops the parent's after a fork), never into the parent's rows."""
    rng = np.random.default_rng(2)
    store = LocalVectorStore(store_dir=tmp_path)
    store.create_workspace("ws")
    batch = nodes(0, 500, rng)
    store.insert(batch, "ws")
    assert store.count("ws") == 500  # the parent's table is built
    replacement = np.full(DIMS, 0.5, dtype=np.float32)
    pid = os.fork()
    if pid == 0:  # the child: replace n0, delete n1, add n500, then leave without cleanup
        code = 1
        try:
            store.insert([VectorNode(unique_id="n0", vector=replacement)], "ws")  # insert replaces an existing id
            store.delete(["n1"], "ws")
            store.insert([VectorNode(unique_id="n500", vector=replacement)], "ws")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    held = store._states["ws"].table  # before any read catches up: the parent's rows are as it wrote them
    assert np.array_equal(held.vectors[:500], np.stack([n.vector for n in batch]))
    # The parent sees the child's acknowledged writes (read from the log), and every other row as it wrote it.
    got = {n.unique_id: n.vector for n in store.get([f"n{i}" for i in range(2, 500)] + ["n0", "n500"], "ws")}
    assert store.count("ws") == 500 and "n1" not in {n.unique_id for n in store.get(["n1"], "ws")}
    assert np.array_equal(got["n0"], replacement) and np.array_equal(got["n500"], replacement)
    for node in batch[2:]:
        assert np.array_equal(got[node.unique_id], node.vector), node.unique_id
    assert store.search_by_vector(batch[7].vector, "ws", top_k=1)[0].unique_id == "n7"
    store.close()


def file_of_rows(path: Path, rows: np.ndarray) -> Path:
    path.write_bytes(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    return path


def test_a_files_rows_grow_in_place_copy_on_write_and_the_file_is_never_written(tmp_path):
    """map_file: the snapshot's rows, then appended rows right after them in the scratch (no copy);
    rows rewritten in place are private to this process."""
    rows = np.random.default_rng(3).standard_normal((1001, 8), dtype=np.float32)  # 32,032 B: ends inside a page
    path = file_of_rows(tmp_path / "snap.f32", rows)
    storage = FileMatrix(tmp_path)
    first = storage.map_file(path, 1001, 8)
    assert np.array_equal(first, rows)
    grown = storage.grown(first, 1001, 5000)
    assert grown.ctypes.data == first.ctypes.data  # the same address: the snapshot's rows were not copied
    grown[1001:] = 7.0  # appended rows: the rest of the file's last page, then the scratch's pages
    grown[5] = -1.0  # a row of the file, rewritten: a private page
    again = storage.grown(grown, 5000, 50_000)
    assert again.ctypes.data == first.ctypes.data and (again[1001:5000] == 7.0).all() and (first[5] == -1).all()
    assert np.array_equal(again[:5], rows[:5]) and np.array_equal(again[6:1001], rows[6:])
    assert path.read_bytes() == rows.tobytes()  # the file is as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.f32"]  # the scratch has no name
    held = again[1001:1003].copy()
    del first, grown, again  # the views go, the region with them: nothing else held it
    taken = storage.taken(storage._current, np.array([0, 1001, 1002]))
    assert np.array_equal(taken[1:], held) and np.array_equal(taken[0], rows[0])


def test_bulk_writes_land_in_the_map_on_both_sides_of_the_files_end(tmp_path):
    """put() writes rows in the scratch with pwrite, rows of the file through the map (copy-on-write),
    and the row straddling the file's last page through the map: every row reads back through the map."""
    rows = np.random.default_rng(4).standard_normal((1100, 12), dtype=np.float32)  # 52,800 B; the scratch starts at 53,248
    path = file_of_rows(tmp_path / "snap.f32", rows)
    storage = FileMatrix(tmp_path)
    matrix = storage.grown(storage.map_file(path, 1100, 12), 1100, 4200)
    assert 1109 * 48 < storage._region.file_end < 1110 * 48  # row 1109 straddles the file's map and the scratch's
    fresh = np.random.default_rng(5).standard_normal((3000, 12), dtype=np.float32)
    storage.put(matrix, 5, rows[5:7] * 2)  # rows of the file only
    assert np.array_equal(matrix[5:7], rows[5:7] * 2)
    storage.put(matrix, 1099, fresh)  # the file's last row, the rest of its last page, then the scratch
    assert np.array_equal(matrix[7:1099], rows[7:1099]) and np.array_equal(matrix[1099:4099], fresh)
    assert path.read_bytes() == rows.tobytes()
    expected = np.stack([rows[1098], fresh[0], fresh[10], fresh[11], fresh[2999]])
    assert np.array_equal(storage.taken(matrix, np.array([1098, 1099, 1109, 1110, 4098])), expected)
    scratch_only = FileMatrix(tmp_path)
    plain = scratch_only.empty(2048, 12)
    scratch_only.put(plain, 5, fresh[:2000])
    assert np.array_equal(plain[5:2005], fresh[:2000])
    assert np.array_equal(scratch_only.grown(plain, 2005, 9000)[5:2005], fresh[:2000])


def test_growing_past_the_reserved_space_copies_once_and_keeps_every_row(tmp_path, monkeypatch):
    rows = np.arange(64 * 4, dtype=np.float32).reshape(64, 4)
    storage = FileMatrix(tmp_path)
    first = storage.map_file(file_of_rows(tmp_path / "snap.f32", rows), 64, 4)
    storage._region.reserve = 8192  # room for 512 rows of 16 B
    inside = storage.grown(first, 64, 512)
    inside[64:] = 1.0
    beyond = storage.grown(inside, 512, 4096)
    assert beyond.ctypes.data != first.ctypes.data  # a scratch of its own
    assert np.array_equal(beyond[:64], rows) and (beyond[64:512] == 1.0).all()


def test_the_first_write_after_a_cold_open_appends_without_copying_the_snapshot(tmp_path, monkeypatch):
    """After a cold open the table's rows are the snapshot's file, mapped: one new node must not copy
    them into the writer's scratch or into RAM (a 1M x 384 store took seconds to; 10M, a minute).
    Its vectors, a row replaced in place and a deleted row are right, and the snapshot still verifies."""
    from vecbook.stores.local import catchup

    monkeypatch.setattr(catchup.tunables, "VERIFY_AT_OPEN_BYTES", 0)  # verified in the background, as a big one
    rng = np.random.default_rng(4)
    store = LocalVectorStore(store_dir=tmp_path)
    store.create_workspace("ws")
    batch = nodes(0, 60_000, rng)  # 92 MB of float32
    store.insert(batch, "ws")
    store.close()
    matrix_bytes = 60_000 * DIMS * 4

    store = LocalVectorStore(store_dir=tmp_path)
    assert store.count("ws") == 60_000
    before = rss_anon()
    fresh = nodes(60_000, 1, rng)
    store.insert(fresh, "ws")
    store.insert([VectorNode(unique_id="n3", content="replaced", metadata={"k": 3}, vector=fresh[0].vector)], "ws")  # a row of the snapshot
    store.delete(["n4"], "ws")
    assert rss_anon() - before < matrix_bytes / 4
    assert unlinked_files_open_in(tmp_path / "ws") <= matrix_bytes / 4 + 4096  # not the matrix: room for a quarter more rows
    hits = store.search_by_vector(fresh[0].vector, "ws", top_k=2)
    assert sorted(h.unique_id for h in hits) == ["n3", "n60000"]
    assert store.search_by_vector(batch[59_999].vector, "ws", top_k=1)[0].unique_id == "n59999"
    assert store.get(["n4"], "ws") == [] and store.count("ws") == 60_000
    state = store._states["ws"]
    state.verifier.wait()  # the checksums are of the file, not of rows rewritten here
    store.close()

    store = LocalVectorStore(store_dir=tmp_path)  # and a reader of the files sees every write
    got = {n.unique_id: n for n in store.get(["n3", "n4", "n5", "n60000"], "ws")}
    assert sorted(got) == ["n3", "n5", "n60000"] and store.count("ws") == 60_000
    assert np.array_equal(got["n3"].vector, fresh[0].vector) and (got["n3"].content, got["n3"].metadata) == ("replaced", {"k": 3})
    assert np.array_equal(got["n5"].vector, batch[5].vector) and np.array_equal(got["n60000"].vector, fresh[0].vector)
    assert store.search_by_vector(batch[59_999].vector, "ws", top_k=1, filter_dict={"k": {"eq": 3}})[0].unique_id == "n3"
    store.close()


def test_a_file_that_cannot_be_mapped_is_an_error_and_reserves_nothing(tmp_path):
    storage = FileMatrix(tmp_path)
    with pytest.raises(FileNotFoundError):
        storage.map_file(tmp_path / "gone.f32", 10, 4)
    assert storage._current is None
    rows = np.ones((10, 4), dtype=np.float32)
    assert np.array_equal(storage.map_file(file_of_rows(tmp_path / "snap.f32", rows), 10, 4), rows)  # and it goes on
