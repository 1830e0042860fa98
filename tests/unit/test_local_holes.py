"""Rows deleted from a snapshot stay in its files as holes, listed in meta.json (``compaction.keeps_holes``).

Deleting 10 nodes of a 1M-node store made the next compaction write the whole snapshot and copy
the whole matrix again (0.8 s → 15.9 s for the close); with holes the vector file is extended.
These tests check what a user sees across closes and opens: deleted nodes stay deleted, an id
deleted and written again is one node, the count is right, and repair brings back no hole.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.local_compaction import (  # noqa: F401 - fixtures
    before_copy, check, fill, make, published, reopened_sees, reopened_store, small_files, store, vectors_inode,
)
from vecbook import LocalVectorStore, VectorNode
from vecbook.stores import local
from vecbook.stores.local.files import snap_name


@pytest.mark.parametrize("index", [None, "hnsw"])
@pytest.mark.parametrize("lazy", [False, True], ids=["decoded at open", "rows read on demand"])
def test_a_few_deletes_leave_holes_and_the_vector_file_is_extended(tmp_path, small_files, monkeypatch, index, lazy):
    folder = tmp_path / "ws"
    s, expected, kw, inode = reopened_store(tmp_path, monkeypatch, index, lazy)
    s.delete(["n3", "n500", "n999"], "ws")
    more = [make(i) for i in range(1000, 1100)]
    s.insert(more, "ws")
    s.delete(["n1050"], "ws")  # written and deleted since the snapshot: a hole too
    s.close()
    for node_id in ("n3", "n500", "n999"):
        expected.pop(node_id)
    expected.update((n.unique_id, n) for n in more if n.unique_id != "n1050")
    meta = published(folder)
    assert meta["snapshot"]["rows"] == 1100 and meta["snapshot"]["dead"] == [3, 500, 999, 1050]
    assert vectors_inode(folder) == inode  # extended, not written again
    reopened_sees(tmp_path, expected, ["n3", "n500", "n999", "n1050"], **kw)
    check(folder, expected)


@pytest.mark.parametrize("lazy", [False, True], ids=["decoded at open", "rows read on demand"])
def test_an_id_deleted_and_written_again_is_one_node_after_every_reopen(tmp_path, small_files, monkeypatch, lazy):
    """The snapshot holds the old row (a hole, its id still in the lines taken over) and the new one."""
    if lazy:
        monkeypatch.setattr(local, "VERIFY_AT_OPEN_BYTES", 0)
    expected = fill(tmp_path, 1000)
    s = LocalVectorStore(store_dir=tmp_path)
    s.delete(["n7"], "ws")
    again = VectorNode(unique_id="n7", content="written again", metadata={"v": 2}, vector=make(7).vector * 2)
    s.insert([again] + [make(i) for i in range(1000, 1100)], "ws")
    s.close()
    expected.update({"n7": again}, **{f"n{i}": make(i) for i in range(1000, 1100)})
    assert 7 in published(tmp_path / "ws")["snapshot"]["dead"]
    third = VectorNode(unique_id="n7", content="a third time", vector=make(7).vector * 3)
    for _ in range(2):  # the second round opens a snapshot holding the hole and the row written again
        reopened_sees(tmp_path, expected, [])
        s = LocalVectorStore(store_dir=tmp_path)
        s.insert([third] + [make(i) for i in range(1100, 1200)], "ws")  # an upsert: finds the live row
        assert s.count("ws") == len(expected) + 100
        s.delete([f"n{i}" for i in range(1100, 1200)], "ws")
        s.close()
        expected["n7"] = third


def test_more_holes_than_a_sixteenth_of_the_rows_are_dropped(tmp_path, small_files):
    folder = tmp_path / "ws"
    expected = fill(tmp_path, 1000)
    inode = vectors_inode(folder)
    s = LocalVectorStore(store_dir=tmp_path)
    gone = [f"n{i}" for i in range(0, 1000, 14)]  # 72 > 1100 // 16, of the 1,100 rows at the close
    s.delete(gone, "ws")
    s.insert([make(i) for i in range(1000, 1100)], "ws")
    s.close()
    for node_id in gone:
        expected.pop(node_id)
    expected.update((f"n{i}", make(i)) for i in range(1000, 1100))
    meta = published(folder)
    assert "dead" not in meta["snapshot"] and meta["snapshot"]["rows"] == len(expected)
    assert vectors_inode(folder) != inode
    reopened_sees(tmp_path, expected, gone)
    check(folder, expected)


def test_holes_are_carried_from_snapshot_to_snapshot(tmp_path, small_files):
    """A hole of an earlier snapshot stays one when the next extends it; it goes with the next whole rewrite."""
    folder = tmp_path / "ws"
    expected = fill(tmp_path, 1000)
    for round_, node_id in enumerate(["n10", "n20", "n30"]):
        s = LocalVectorStore(store_dir=tmp_path)
        s.delete([node_id], "ws")
        s.insert([make(i) for i in range(1000 + 100 * round_, 1100 + 100 * round_)], "ws")
        s.close()
        expected.pop(node_id)
        expected.update((f"n{i}", make(i)) for i in range(1000 + 100 * round_, 1100 + 100 * round_))
    assert published(folder)["snapshot"]["dead"] == [10, 20, 30]
    reopened_sees(tmp_path, expected, ["n10", "n20", "n30"])
    check(folder, expected)


@pytest.mark.parametrize("damage", ["a vector chunk", "meta.json"])
def test_repair_brings_back_no_hole(tmp_path, small_files, damage):
    """Repair rebuilds from the snapshot's rows: the holes stay out, listed in meta.json and in the
    snapshot's own header line (for a repair without meta.json)."""
    folder = tmp_path / "ws"
    expected = fill(tmp_path, 1000)
    s = LocalVectorStore(store_dir=tmp_path)
    s.insert([make(i) for i in range(1000, 1100)], "ws")
    s.delete(["n5", "n1010"], "ws")
    s.close()
    expected.pop("n5")
    expected.update((f"n{i}", make(i)) for i in range(1000, 1100) if i != 1010)
    assert published(folder)["snapshot"]["dead"] == [5, 1010]
    if damage == "meta.json":
        (folder / "meta.json").write_text("{")
    else:  # a flipped byte in the vectors of rows 0-3 (64-byte chunks of 20-byte rows): those are lost
        f32 = folder / f"{snap_name(published(folder)['generation'])}.f32"
        data = bytearray(f32.read_bytes())
        data[10] ^= 0x40
        f32.write_bytes(bytes(data))
        for i in range(4):
            expected.pop(f"n{i}", None)
    LocalVectorStore(store_dir=tmp_path).repair("ws")
    reopened_sees(tmp_path, expected, ["n5", "n1010"])


def test_a_meta_json_listing_holes_out_of_order_is_damage(tmp_path, small_files):
    folder = tmp_path / "ws"
    fill(tmp_path, 1000)
    s = LocalVectorStore(store_dir=tmp_path)
    s.delete(["n5", "n9"], "ws")
    s.insert([make(i) for i in range(1000, 1100)], "ws")
    s.close()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["snapshot"]["dead"] == [5, 9]
    from vecbook.stores.local.files import _meta_problem

    meta["snapshot"]["dead"] = [9, 5]
    assert _meta_problem(meta) == "describes its snapshot inconsistently"
    meta["snapshot"]["dead"] = [5, 1100]
    assert _meta_problem(meta) == "describes its snapshot inconsistently"


def test_deletes_during_a_background_copy_are_replayed_over_it(tmp_path, store, before_copy):
    """A background compaction copies rows with the lock released between chunks; rows deleted (and an id
    written again) after it listed the holes are replayed from the log over the copy."""
    folder = tmp_path / "ws"
    expected = {f"n{i}": make(i) for i in range(400)}
    store.insert(list(expected.values()), "ws")
    store.wait_for_compaction()
    store.delete(["n1", "n2"], "ws")  # holes of the next snapshot
    again = VectorNode(unique_id="n2", content="again", vector=make(2).vector)

    def meanwhile(*args):
        before_copy(None)
        store.delete(["n3", "n399"], "ws")
        store.insert([again], "ws")

    before_copy(meanwhile)
    more = [make(i) for i in range(400, 900)]
    store.insert(more, "ws")  # the log outgrows the snapshot: a compaction in the background
    store.wait_for_compaction()
    for node_id in ("n1", "n3", "n399"):
        expected.pop(node_id)
    expected.update({n.unique_id: n for n in more}, n2=again)
    assert {1, 2} <= set(published(folder)["snapshot"]["dead"])
    reopened_sees(tmp_path, expected, ["n1", "n3", "n399"])
    store.close()
    reopened_sees(tmp_path, expected, ["n1", "n3", "n399"])


def test_a_vecbook_that_knows_no_holes_refuses_a_store_that_may_have_them(tmp_path, small_files, monkeypatch):
    """meta.json format 4: a vecbook reading formats up to 3 would take the holes for nodes; it names the format instead."""
    from vecbook.errors import CorruptedFileError
    from vecbook.stores.local import files

    fill(tmp_path, 1000)
    s = LocalVectorStore(store_dir=tmp_path)
    s.delete(["n1"], "ws")
    s.insert([make(i) for i in range(1000, 1100)], "ws")
    s.close()
    assert published(tmp_path / "ws")["format"] == 4
    monkeypatch.setattr(files, "_KEYS", {k: v for k, v in files._KEYS.items() if k < 4})
    with pytest.raises(CorruptedFileError, match="unknown format 4"):
        LocalVectorStore(store_dir=tmp_path).count("ws")
    meta = published(tmp_path / "ws")
    meta["format"] = 3  # holes under an older format's number: damage, not nodes
    assert files._meta_problem(meta) == "describes its snapshot inconsistently"


def test_a_background_compaction_past_the_limit_drops_deleted_rows_of_the_snapshot_it_builds_on(tmp_path, store):
    """More holes than a sixteenth: the table drops its dead rows before the background copy; the published
    snapshot's rows, some deleted, must then be copied row by row, not taken over with the deleted ones among them."""
    folder = tmp_path / "ws"
    expected = {f"n{i}": make(i) for i in range(400)}
    store.insert(list(expected.values()), "ws")
    store.wait_for_compaction()
    gone = [f"n{i}" for i in range(0, 400, 5)]  # 80 > 900 // 16
    store.delete(gone, "ws")
    more = [make(i) for i in range(400, 900)]
    store.insert(more, "ws")  # the log outgrows the snapshot: a compaction in the background
    store.wait_for_compaction()
    for node_id in gone:
        expected.pop(node_id)
    expected.update((n.unique_id, n) for n in more)
    assert "dead" not in published(folder)["snapshot"]
    reopened_sees(tmp_path, expected, gone)
    check(folder, expected)
