"""Compactions after a bulk load copy the rows the last snapshot already holds instead of encoding them again.

What a user checks: after any mix of appends, in-place updates and deletes across several
compactions (in the background, at close, reopened in between), a new process reads exactly
the nodes written, and the snapshot files are the bytes a full rewrite would have produced.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from vecbook import LocalVectorStore, VectorNode
from vecbook.stores import local
from vecbook.stores.engine.batch import NodeBatch
from vecbook.stores.local import compaction, snapshot_rows
from vecbook.stores.local.files import log_name, snap_name
from vecbook.stores.local.snapshot import extend_ids, read_ids, write_ids
from vecbook.stores.local.snapshot_files import write_snapshot
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
        def copy(*args):
            fn(*args)
            return real(*args)

        monkeypatch.setattr(compaction, "write_snapshot_from", real if fn is None else copy)

    return install


def write(s: LocalVectorStore, expected: dict[str, VectorNode], nodes: list[VectorNode]) -> None:
    """Insert ``nodes`` into "ws", note them in ``expected`` and wait for the compaction they may start."""
    s.insert(nodes, "ws")
    expected.update((n.unique_id, n) for n in nodes)
    s.wait_for_compaction()


def published(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def check(folder: Path, expected: dict[str, VectorNode]) -> None:
    """A fresh store reads ``expected``; the snapshot equals a full rewrite of its rows, byte for byte."""
    reader = LocalVectorStore(store_dir=folder.parent)
    got = {n.unique_id: n for n in reader.get(list(expected), folder.name)}
    assert reader.count(folder.name) == len(expected) == len(got)
    for node_id, node in expected.items():
        assert (got[node_id].content, got[node_id].metadata) == (node.content, node.metadata)
        assert np.array_equal(got[node_id].vector, node.vector)
    reader.close()
    meta = published(folder)
    prefix = folder / snap_name(meta["generation"])
    batch = read_snapshot(prefix, meta["snapshot"], meta["dimensions"])  # verifies every checksum
    again = folder.parent / "again"
    write_snapshot(again, NodeBatch(batch.ids, batch.contents, batch.metadatas, np.ascontiguousarray(batch.vectors)))
    for suffix in (".json", ".f32"):
        assert prefix.with_suffix(suffix).read_bytes() == again.with_suffix(suffix).read_bytes()
    assert read_ids(prefix.with_suffix(".ids"), len(batch.ids)) == list(batch.ids)  # the id cache covers copied rows too
    for cache in (".ids", ".rix"):  # extended from the base's, yet what a full rewrite writes
        assert prefix.with_suffix(cache).read_bytes() == again.with_suffix(cache).read_bytes()
    for suffix in (".json", ".f32", ".nrm", ".ids", ".rix"):
        again.with_suffix(suffix).unlink()


def test_bulk_load_with_updates_and_deletes_between_compactions(tmp_path, store):
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    generations = set()
    for step in range(40):
        batch = [make(i) for i in range(step * 7, step * 7 + 7)]
        if step % 9 == 4:
            batch.append(make(step, version=step))  # an in-place update of an old row
        store.insert(batch, "ws")
        expected.update((n.unique_id, n) for n in batch)
        if step % 13 == 6:
            store.delete([f"n{step}", f"n{step * 3}"], "ws")
            expected.pop(f"n{step}", None)
            expected.pop(f"n{step * 3}", None)
        store.wait_for_compaction()
        generations.add(published(folder)["generation"])
    assert len(generations) > 4  # several compactions ran, most of them on top of the last one
    check(folder, expected)
    store.close()
    check(folder, expected)


def test_reopened_store_builds_on_the_snapshot_it_opened(tmp_path, small_files):
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    for session in range(3):
        s = LocalVectorStore(store_dir=tmp_path)
        if session == 0:
            s.create_workspace("ws")
        for step in range(6):
            batch = [make(i, session) for i in range(session * 100 + step * 9, session * 100 + step * 9 + 9)]
            if session == 2 and step == 3:
                batch.append(make(1, version=99))  # an update of a row of the first session's snapshot
            write(s, expected, batch)
        s.close()
        check(folder, expected)


def test_a_compaction_that_fails_keeps_the_changes_it_saw(tmp_path, store, before_copy, monkeypatch):
    """An update seen by a compaction that then failed still keeps the next one from copying that row."""
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    before_copy(disk_full)
    monkeypatch.setattr(local, "COMPACT_BACKOFF", 0.0)
    write(store, expected, [make(2, version=5)] + [make(i) for i in range(40, 90)])
    before_copy(None)
    store._state("ws").compact_retry_at = 0.0
    write(store, expected, [make(i) for i in range(90, 200)])
    assert published(tmp_path / "ws")["generation"] >= 2
    check(tmp_path / "ws", expected)


def test_rows_renumbered_during_a_background_copy_abandon_it(tmp_path, store, before_copy):
    """The vectors are copied a chunk at a time after the rows were listed; a renumbering in between gives up."""
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(30)])
    before = published(tmp_path / "ws")["generation"]
    renumbered = []

    def renumber_first(*args):
        if not renumbered:
            state = store._state("ws")
            with state.lock:
                state.table.layout += 1  # as a compaction of the table's dead rows does
            renumbered.append(1)

    before_copy(renumber_first)
    write(store, expected, [make(i) for i in range(30, 100)])
    assert renumbered and published(tmp_path / "ws")["generation"] == before  # given up, nothing published
    write(store, expected, [make(100)])  # the next write starts a compaction again
    assert published(tmp_path / "ws")["generation"] == before + 1
    check(tmp_path / "ws", expected)


def test_a_snapshot_written_with_other_line_sizes_is_encoded_again(tmp_path, store, monkeypatch):
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    monkeypatch.setattr(local, "SNAPSHOT_LINE_ROWS", 8)  # the next snapshot has lines of 8 rows, the last one of 4
    write(store, expected, [make(i) for i in range(40, 120)])
    check(tmp_path / "ws", expected)


def test_another_process_publishing_during_the_copy_makes_it_give_up_quietly(tmp_path, store, before_copy, caplog):
    """The snapshot a compaction copies from may be removed by another writer's compaction: nothing fails."""
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    other = []

    def publish_elsewhere_first(*args):
        if not other:
            other.append(LocalVectorStore(store_dir=tmp_path))  # as another process would
            # its compaction (in its own thread) comes through here too
            write(other[0], expected, [make(i, version=1) for i in range(200, 300)])

    before_copy(publish_elsewhere_first)
    with caplog.at_level("WARNING", logger="vecbook.local"):
        write(store, expected, [make(i) for i in range(40, 120)])
    assert other and not [r for r in caplog.records if "compaction failed" in r.getMessage()]
    before_copy(None)
    write(store, expected, [make(300)])
    check(tmp_path / "ws", expected)
    other[0].close()


def log_of(folder: Path) -> Path:
    return folder / log_name(published(folder)["generation"])


def compact_while_writing(store: LocalVectorStore, expected: dict[str, VectorNode], before_copy, first: int) -> None:
    """Insert until a background compaction publishes, with two inserts made while it writes its snapshot."""
    folder = store._dir("ws")
    generation = published(folder)["generation"]
    during = iter(range(2))

    def write_more(*args):
        if next(during, None) is not None:
            more = [make(i) for i in range(first + 1000 + 10 * len(expected), first + 1010 + 10 * len(expected))]
            store.insert(more, "ws")
            expected.update((n.unique_id, n) for n in more)
            write_more()

    before_copy(write_more)
    start = first
    while published(folder)["generation"] == generation:
        write(store, expected, [make(i) for i in range(start, start + 40)])
        start += 40
    before_copy(None)


def test_frames_written_during_a_background_compaction_stay_where_they_are_and_none_is_lost(tmp_path, store, before_copy, monkeypatch):
    """The next generation's log is the same file under a second name, its frames starting where the
    snapshot stops: the frames written while the snapshot was written are not copied. A reader that
    was open before follows the writer across the change."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    reader = LocalVectorStore(store_dir=tmp_path)
    assert reader.count("ws") == 40
    inode = log_of(folder).stat().st_ino

    def no_copy(*args):
        raise AssertionError("a frame was copied")

    monkeypatch.setattr(compaction, "copy_log", no_copy)
    compact_while_writing(store, expected, before_copy, 40)
    meta = published(folder)
    assert meta["format"] == 3 and meta["log_start"] > 0
    assert log_of(folder).stat().st_ino == inode and log_of(folder).stat().st_nlink == 1  # the old name is gone
    assert reader.count("ws") == len(expected)
    write(store, expected, [make(5000)])  # appended after the frames left in place
    assert reader.count("ws") == len(expected)
    reader.close()
    store.close()
    check(folder, expected)


def test_the_bytes_before_the_previous_generation_s_start_are_given_back_and_repair_skips_them(tmp_path, store, before_copy):
    """After two such compactions the log's first bytes are a hole (they read as zeros), and a
    repair that lost meta.json starts at the first frame after them: nothing is lost."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    compact_while_writing(store, expected, before_copy, 100)
    first_start = published(folder)["log_start"]
    compact_while_writing(store, expected, before_copy, 10_000)
    log = log_of(folder)
    assert published(folder)["log_start"] > first_start > 0
    data = log.read_bytes()
    assert data[:first_start] == bytes(first_start)  # freed: a hole on a file system that can punch one
    store.close()
    check(folder, expected)
    (folder / "meta.json").unlink()
    repairer = LocalVectorStore(store_dir=tmp_path)
    report = repairer.repair("ws")
    assert report["repaired"] and report["skipped_log_bytes"] == 0
    assert repairer.count("ws") == len(expected)
    repairer.close()


def test_where_holes_cannot_be_punched_the_dead_bytes_stay_until_close_and_nothing_is_lost(tmp_path, store, before_copy, monkeypatch):
    from vecbook.stores.local import files

    monkeypatch.setattr(files, "_fallocate", lambda: None)  # not Linux, say
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    compact_while_writing(store, expected, before_copy, 100)
    compact_while_writing(store, expected, before_copy, 10_000)
    assert log_of(folder).read_bytes()[:4] == b"VBL1"  # the first frame is still there
    store.close()
    assert published(folder)["log_start"] == 0 and log_of(folder).stat().st_size == 0  # closing started a new log
    check(folder, expected)


def test_without_hard_links_the_frames_after_the_snapshot_are_copied_into_a_new_log(tmp_path, store, before_copy, monkeypatch):
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    inode = log_of(folder).stat().st_ino

    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    compact_while_writing(store, expected, before_copy, 40)
    assert published(folder)["log_start"] == 0 and log_of(folder).stat().st_ino != inode
    assert log_of(folder).stat().st_size > 0  # the frames written during the compaction
    store.close()
    check(folder, expected)


def test_a_reader_whose_log_was_freed_while_it_opened_reads_the_newer_generation(tmp_path, store, before_copy, monkeypatch):
    """A reader slow enough that two compactions publish between its reading meta.json and its
    reading the log finds zeros where frames were: it starts again (reading the log once more
    by its name, it finds it gone), it does not report damage."""
    from vecbook.stores.local import catchup

    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    compact_while_writing(store, expected, before_copy, 100)
    real, calls = catchup.CatchUp._read_generation, []

    def slow(self, where, meta):
        opened = real(self, where, meta)
        if not calls:
            calls.append(meta["generation"])
            compact_while_writing(store, expected, before_copy, 10_000)
            compact_while_writing(store, expected, before_copy, 20_000)
        return opened

    monkeypatch.setattr(catchup.CatchUp, "_read_generation", slow)
    reader = LocalVectorStore(store_dir=tmp_path)
    assert reader.count("ws") == len(expected)
    assert calls and published(folder)["generation"] >= calls[0] + 2
    reader.close()


def test_a_follower_that_checked_meta_json_before_two_compactions_rebuilds_instead_of_missing_writes(tmp_path, before_copy, small_files):
    """A follower reads new frames from the log it holds open once meta.json showed no change. If two
    compactions publish in between, the bytes it reads were freed: it must rebuild, not take the
    zeros for a torn tail and miss acknowledged writes."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    with LocalVectorStore(store_dir=tmp_path) as first:
        first.create_workspace("ws")
        write(first, expected, [make(i) for i in range(40)])  # closing compacts: an empty log
    writer, follower = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    assert follower.count("ws") == 40 and published(folder)["log_start"] == 0
    compact_while_writing(writer, expected, before_copy, 100)
    compact_while_writing(writer, expected, before_copy, 10_000)
    state = follower._loaded_state("ws")
    with state.lock:
        assert follower._caught_up(state) is False  # as if meta.json had been checked before both
    assert follower.count("ws") == len(expected)
    writer.close()
    follower.close()


def test_the_log_is_copied_by_the_kernel_and_a_cut_source_is_damage(tmp_path, monkeypatch):
    """``copy_log`` appends with ``copy_file_range`` (a target opened with O_APPEND made it fail with
    EBADF on every call, and the fallback through 8 MB buffers ran at 135 MB/s); a source shorter
    than the range asked for is reported, not copied short."""
    from vecbook.errors import CorruptedFileError
    from vecbook.stores.local import files

    source, target = tmp_path / "log-1", tmp_path / "log-2.tmp"
    source.write_bytes(bytes(range(256)) * 4096)
    target.write_bytes(b"head")
    calls, refused = [], []
    real = os.copy_file_range

    def copy_file_range(*args):
        calls.append(args)
        try:
            return real(*args)
        except OSError as exc:
            refused.append(exc)
            raise

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    assert files.copy_log(source, 1000, 900_000, target, durable=True) == 4 + 899_000
    assert target.read_bytes() == b"head" + source.read_bytes()[1000:900_000]
    assert calls and not refused
    with pytest.raises(CorruptedFileError, match="ended before offset"):
        files.copy_log(source, 0, source.stat().st_size + 1, target)


def vectors_inode(folder: Path) -> int:
    return (folder / f"{snap_name(published(folder)['generation'])}.f32").stat().st_ino


def test_a_compaction_after_appends_extends_the_published_vector_file_instead_of_copying_it(tmp_path, store):
    """The new generation's .f32 is the old one's file, grown: a bulk load writes each vector once more, not
    once per compaction. A row rewritten in place needs a new file; the next compaction extends that one."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    first = published(folder)["generation"], vectors_inode(folder)
    write(store, expected, [make(i) for i in range(40, 130)])
    assert published(folder)["generation"] > first[0] and vectors_inode(folder) == first[1]
    check(folder, expected)  # byte for byte a full rewrite: no stale bytes past the rows
    write(store, expected, [make(3, version=1)] + [make(i) for i in range(130, 300)])
    rewritten = vectors_inode(folder)
    assert rewritten != first[1]
    write(store, expected, [make(i) for i in range(300, 700)])
    assert vectors_inode(folder) == rewritten
    check(folder, expected)


def test_the_older_generation_still_verifies_after_its_file_was_extended(tmp_path, store):
    """A reader of generation g reads only the bytes meta.json recorded for g, whatever was appended since."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    meta = published(folder)
    old = folder / snap_name(meta["generation"])
    keep = tmp_path / "kept"
    for suffix in (".json", ".f32"):
        (keep.with_suffix(suffix)).hardlink_to(old.with_suffix(suffix))  # as a process still reading g holds them
    rows_of_g = read_snapshot(old, meta["snapshot"], meta["dimensions"])
    write(store, expected, [make(i) for i in range(40, 200)])
    assert published(folder)["generation"] > meta["generation"] and keep.with_suffix(".f32").stat().st_size > meta["snapshot"]["f32"]["size"]
    again = read_snapshot(keep, meta["snapshot"], meta["dimensions"])  # verifies every checksum of g
    assert list(again.ids) == list(rows_of_g.ids) and np.array_equal(again.vectors, rows_of_g.vectors)


def test_what_an_interrupted_extension_left_is_ignored_and_then_cut(tmp_path, store):
    """A writer killed while extending leaves bytes past the published size: readers ignore them (no damage
    reported), and the next extension cuts them off first."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    store.close()
    vectors = folder / f"{snap_name(published(folder)['generation'])}.f32"
    with open(vectors, "ab") as f:
        f.write(np.full(7, 9.5, dtype=np.float32).tobytes())  # a torn row of a generation never published
    inode = vectors.stat().st_ino
    again = LocalVectorStore(store_dir=tmp_path)
    got = {n.unique_id: n for n in again.get(list(expected), "ws")}  # verified at open: no damage reported
    assert len(got) == again.count("ws") == 40 and all(np.array_equal(got[i].vector, n.vector) for i, n in expected.items())
    write(again, expected, [make(i) for i in range(40, 150)])
    assert vectors_inode(folder) == inode
    again.close()
    check(folder, expected)  # byte for byte a full rewrite: the torn row is gone


def test_a_compaction_while_another_writer_extends_writes_a_file_of_its_own(tmp_path, store):
    from vecbook.stores.local import locking

    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    before = vectors_inode(folder)
    other = locking.open_lock(folder / "EXTEND")  # another process, extending the published file
    assert locking.try_acquire(other)
    try:
        write(store, expected, [make(i) for i in range(40, 130)])
        assert vectors_inode(folder) != before
    finally:
        locking.release(other)
        other.close()
    check(folder, expected)


def test_without_hard_links_the_published_bytes_are_copied(tmp_path, store, monkeypatch):
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    before = vectors_inode(folder)

    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    write(store, expected, [make(i) for i in range(40, 130)])
    assert vectors_inode(folder) != before
    check(folder, expected)


@pytest.mark.parametrize("taken", [0, 1, 3, 5])
@pytest.mark.parametrize("new", [[], ["n"], ['q"uote', "b\\ack\\\\", "üñï", "\ud800 lone", 'end\\"'] * 3])
@pytest.mark.parametrize("scan", [16 << 20, 5])  # 5 bytes: runs of backslashes and escaped quotes cross the scan's steps
def test_an_extended_id_cache_is_the_one_a_full_write_gives(tmp_path, monkeypatch, taken, new, scan):
    """Ids with quotes, backslashes, escaped quotes, non-ASCII and lone surrogates: the base's bytes are cut
    after its ``taken``-th id without decoding them."""
    monkeypatch.setattr(snapshot_rows, "_SCAN", scan)
    base_ids = ['a"b', "c\\", 'd\\"e', "ф", "\udfff"]
    write_ids(tmp_path / "base.ids", base_ids)
    assert extend_ids(tmp_path / "new.ids", tmp_path / "base.ids", len(base_ids), taken, new)
    write_ids(tmp_path / "full.ids", base_ids[:taken] + new)
    assert (tmp_path / "new.ids").read_bytes() == (tmp_path / "full.ids").read_bytes()
    assert read_ids(tmp_path / "new.ids", taken + len(new)) == base_ids[:taken] + new


def test_an_id_cache_is_not_extended_from_a_damaged_base(tmp_path):
    write_ids(tmp_path / "base.ids", ["a", "b", "c"])
    raw = bytearray((tmp_path / "base.ids").read_bytes())
    raw[-3] ^= 1
    (tmp_path / "base.ids").write_bytes(bytes(raw))
    assert not extend_ids(tmp_path / "new.ids", tmp_path / "base.ids", 3, 2, ["d"])
    assert not (tmp_path / "new.ids").exists() and not extend_ids(tmp_path / "new.ids", tmp_path / "missing.ids", 3, 2, ["d"])


def test_ids_whose_hashes_collide_across_compactions_keep_the_row_index_a_full_rewrite_gives(tmp_path, store, monkeypatch):
    """The row index of a compaction after appends merges the new rows' hashes into the base's sorted ones;
    equal hashes (CRC-32 collisions, found by search) must stay in row order, as one stable sort puts them."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    first, later = ["xxipexojjc", "vkuoouimcm"], ["jusynyghbq", "tantnjxtci"]  # crc32(first[k]) == crc32(later[k])
    assert [zlib.crc32(a.encode()) for a in first] == [zlib.crc32(b.encode()) for b in later]
    extended = []
    real = compaction.write_snapshot_from
    monkeypatch.setattr(compaction, "write_snapshot_from", lambda *a: (extended.append(a[4] is not None), real(*a))[1])
    for step, batch_ids in enumerate([first + [f"a{i}" for i in range(10)], later + [f"b{i}" for i in range(40)]]):
        write(store, expected, [VectorNode(unique_id=i, content=f"{i} {step}", vector=make(k).vector) for k, i in enumerate(batch_ids)])
    assert extended == [False, True]  # the second snapshot was built on the first
    check(folder, expected)
    assert {n.unique_id for n in store.get(first + later, "ws")} == set(first + later)
