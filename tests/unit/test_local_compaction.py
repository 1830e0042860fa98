"""Compactions after a bulk load copy the rows the last snapshot already holds instead of encoding them again.

What a user checks: after any mix of appends, in-place updates and deletes across several
compactions (in the background, at close, reopened in between), a new process reads exactly
the nodes written, and the snapshot files are the bytes a full rewrite would have produced.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests.helpers.local_compaction import before_copy, check, make, published, small_files, store, vectors_inode, write  # noqa: F401 - fixtures
from vecbook import LocalVectorStore, VectorNode
from vecbook.stores import local
from vecbook.stores.local import compaction, snapshot_rows
from vecbook.stores.local.files import snap_name
from vecbook.stores.local.snapshot import extend_ids, read_ids, write_ids
from vecbook.stores.local.snapshot_read import read_snapshot


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


def test_a_compaction_after_appends_extends_the_published_vector_file_instead_of_copying_it(tmp_path, store):
    """The new generation's .f32 is the old one's file, grown: a bulk load writes each vector once more, not
    once per compaction. A node of the snapshot written again moves to a new row (its old one a hole), so
    that extends it too (at 1M rows, 10 rewrites made the close write all 1.5 GB again); more moved rows
    than a sixteenth need a new file, which the next compaction extends."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    first = published(folder)["generation"], vectors_inode(folder)
    write(store, expected, [make(i) for i in range(40, 130)])
    assert published(folder)["generation"] > first[0] and vectors_inode(folder) == first[1]
    check(folder, expected)  # byte for byte a full rewrite: no stale bytes past the rows
    generation = published(folder)["generation"]
    write(store, expected, [make(3, version=1)] + [make(i) for i in range(130, 300)])
    assert published(folder)["generation"] > generation and vectors_inode(folder) == first[1]
    assert published(folder)["snapshot"]["dead"] == [3]
    check(folder, expected)
    write(store, expected, [make(i, version=2) for i in range(10, 130)] + [make(i) for i in range(300, 700)])
    rewritten = vectors_inode(folder)
    assert rewritten != first[1]
    write(store, expected, [make(i) for i in range(700, 1500)])
    assert vectors_inode(folder) == rewritten
    check(folder, expected)


def test_rows_written_and_deleted_since_the_snapshot_leave_its_file_to_be_extended(tmp_path, small_files):
    """Rows written since the last snapshot and deleted are holes of the next one: the close's compaction
    still extends the published vector file (at 3.3M rows it wrote all 5 GB again). So is a deleted row
    the snapshot holds (``test_local_holes.py``); more holes than a sixteenth of the rows need a new file."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    write(s, expected, [make(i) for i in range(1000)])
    s.close()
    first = published(folder)["generation"], vectors_inode(folder)
    s = LocalVectorStore(store_dir=tmp_path)  # the writes below stay in the log (smaller than the snapshot)
    s.insert([make(i) for i in range(1000, 1060)], "ws")
    s.delete([f"n{i}" for i in range(1000, 1060, 2)], "ws")
    s.insert([make(i) for i in range(1100, 1110)], "ws")
    expected.update((f"n{i}", make(i)) for i in [*range(1001, 1060, 2), *range(1100, 1110)])
    assert published(folder)["generation"] == first[0]
    s.close()  # compacts: 30 holes, listed in meta.json
    assert published(folder)["generation"] > first[0] and vectors_inode(folder) == first[1]
    check(folder, expected)  # byte for byte a full rewrite
    assert published(folder)["snapshot"]["dead"] == list(range(1000, 1060, 2))
    s = LocalVectorStore(store_dir=tmp_path)
    gone = [f"n{i}" for i in range(3, 1000, 25)]  # 40 more: 70 holes > 1,080 // 16
    s.delete(gone, "ws")
    for node_id in gone:
        expected.pop(node_id)
    s.insert([make(i) for i in range(1200, 1210)], "ws")
    expected.update((f"n{i}", make(i)) for i in range(1200, 1210))
    s.close()
    assert vectors_inode(folder) != first[1] and "dead" not in published(folder)["snapshot"]
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
    monkeypatch.setattr(compaction, "write_snapshot_from", lambda *a, **k: (extended.append(a[4] is not None), real(*a, **k))[1])
    for step, batch_ids in enumerate([first + [f"a{i}" for i in range(10)], later + [f"b{i}" for i in range(40)]]):
        write(store, expected, [VectorNode(unique_id=i, content=f"{i} {step}", vector=make(k).vector) for k, i in enumerate(batch_ids)])
    assert extended == [False, True]  # the second snapshot was built on the first
    check(folder, expected)
    assert {n.unique_id for n in store.get(first + later, "ws")} == set(first + later)
