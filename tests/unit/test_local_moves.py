"""A node the published snapshot holds, written again, moves to a new row; its old row is a hole.

Rewriting 10 nodes of a 1M-node store (new metadata, say) changed their rows in place, so the next
compaction wrote the whole snapshot again: the close took 8.4 s instead of 1.0 s. Rows a snapshot
holds are now never changed in place (``NodeTable.frozen_rows``): the vector file is extended.
These tests check what a user sees across closes and opens: the new version and only it, each id
once, in count, get, iteration and search.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.local_compaction import (  # noqa: F401 - fixtures
    before_copy, check, fill, make, published, reopened_sees, reopened_store, small_files, store, vectors_inode,
)
from vecbook import LocalVectorStore, MemoryVectorStore
from vecbook.stores.local.files import snap_name


def rewritten(i: int, version: int = 1):
    return make(i, version=version)


def hits(s, vector, k=3):
    return [(h.unique_id, h.content) for h in s.search_by_vector(vector, "ws", top_k=k)]


@pytest.mark.parametrize("index", [None, "hnsw"])
@pytest.mark.parametrize("lazy", [False, True], ids=["decoded at open", "rows read on demand"])
def test_nodes_of_the_snapshot_written_again_move_and_the_vector_file_is_extended(tmp_path, small_files, monkeypatch, index, lazy):
    folder = tmp_path / "ws"
    s, expected, kw, inode = reopened_store(tmp_path, monkeypatch, index, lazy)
    new = [rewritten(3), rewritten(500)]
    s.insert(new, "ws")
    assert hits(s, new[0].vector, 1) == [("n3", new[0].content)]  # found at once, by its new vector
    more = [make(i) for i in range(1000, 1100)]
    s.insert(more, "ws")
    new.append(rewritten(1050))  # written since the snapshot: changed where it is
    s.insert(new[-1:], "ws")
    assert s.count("ws") == 1100
    s.close()
    expected.update((n.unique_id, n) for n in more + new)
    meta = published(folder)
    assert meta["snapshot"]["rows"] == 1102 and meta["snapshot"]["dead"] == [3, 500]
    assert vectors_inode(folder) == inode  # extended, not written again
    reopened_sees(tmp_path, expected, [], **kw)
    s = LocalVectorStore(store_dir=tmp_path, **kw)
    for node in new:
        assert hits(s, node.vector, 1) == [(node.unique_id, node.content)]
        old = make(int(node.unique_id[1:])).vector
        assert (node.unique_id, make(int(node.unique_id[1:])).content) not in hits(s, old, 5)  # the old version is gone
    s.close()
    check(folder, expected)


def test_a_node_written_again_at_every_open_is_one_node_and_its_last_version(tmp_path, small_files):
    """Each close leaves its old row a hole and extends the file; the holes stay bounded: past a
    sixteenth of the rows, the table drops them and the snapshot is written again once."""
    folder = tmp_path / "ws"
    expected = fill(tmp_path, 1000)
    for version in range(1, 8):
        s = LocalVectorStore(store_dir=tmp_path)
        batch = [rewritten(i, version) for i in range(0, 1000, 50)] + [make(1000 * version + i) for i in range(60)]
        s.insert(batch, "ws")
        s.close()
        expected.update((n.unique_id, n) for n in batch)
        assert len(published(folder)["snapshot"].get("dead", [])) <= published(folder)["snapshot"]["rows"] // 16
    reopened_sees(tmp_path, expected, [])
    check(folder, expected)


def test_a_node_written_twice_moves_once_and_keeps_the_last_version(tmp_path, small_files):
    """The first write moves it past the snapshot's rows; the second changes it where it then is."""
    expected = fill(tmp_path, 1000)
    s = LocalVectorStore(store_dir=tmp_path)
    s.insert([rewritten(7, 1)], "ws")
    s.insert([rewritten(7, 2)] + [make(i) for i in range(1000, 1100)], "ws")
    s.close()
    expected.update((n.unique_id, n) for n in [rewritten(7, 2)] + [make(i) for i in range(1000, 1100)])
    assert published(tmp_path / "ws")["snapshot"]["dead"] == [7]
    assert published(tmp_path / "ws")["snapshot"]["rows"] == 1101
    reopened_sees(tmp_path, expected, [])


@pytest.mark.parametrize("damage", ["meta.json", "meta.json and the header line"])
def test_repair_keeps_the_last_version_of_a_moved_node(tmp_path, small_files, damage):
    """Without meta.json the snapshot's header line lists the holes; without both, a node's later row
    is its newer version: one node each, never the old version back."""
    folder = tmp_path / "ws"
    expected = fill(tmp_path, 1000)
    s = LocalVectorStore(store_dir=tmp_path)
    s.insert([rewritten(5)] + [make(i) for i in range(1000, 1100)], "ws")
    s.close()
    s = LocalVectorStore(store_dir=tmp_path)  # the next snapshot takes the line of n5's hole over, id and all
    s.insert([make(i) for i in range(1100, 1300)], "ws")
    s.close()
    expected.update((n.unique_id, n) for n in [rewritten(5)] + [make(i) for i in range(1000, 1300)])
    assert published(folder)["snapshot"]["dead"] == [5]
    snapshot = folder / f"{snap_name(published(folder)['generation'])}.json"
    (folder / "meta.json").write_text("{")
    if damage != "meta.json":
        lines = snapshot.read_bytes().split(b"\n")
        snapshot.write_bytes(b"\n".join([b"{damaged", *lines[1:]]))
    LocalVectorStore(store_dir=tmp_path).repair("ws")
    reopened_sees(tmp_path, expected, [])


def test_a_reader_replaying_the_moves_sees_what_the_writer_wrote(tmp_path, small_files):
    """Another process reads the snapshot and replays the log (writes since it): the same nodes."""
    expected = fill(tmp_path, 1000)
    writer, reader = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    assert reader.count("ws") == 1000
    new = [rewritten(i) for i in (1, 2, 999)]
    writer.insert(new, "ws")
    writer.delete(["n2"], "ws")
    expected.update((n.unique_id, n) for n in new)
    expected.pop("n2")
    assert reader.count("ws") == 999
    got = {n.unique_id: n for n in reader.get(["n1", "n2", "n999"], "ws")}
    assert sorted(got) == ["n1", "n999"] and got["n1"].content == new[0].content
    assert np.array_equal(got["n999"].vector, new[2].vector)
    writer.close()
    reader.close()
    reopened_sees(tmp_path, expected, ["n2"])


def test_writes_during_a_background_copy_move_nodes_it_copied(tmp_path, store, before_copy):
    """A background compaction copies rows with the lock released between chunks; a node of the
    published snapshot written again meanwhile moves: the log replays the move over the copy."""
    folder = tmp_path / "ws"
    expected = {f"n{i}": make(i) for i in range(400)}
    store.insert(list(expected.values()), "ws")
    store.wait_for_compaction()
    new = [rewritten(5), rewritten(399)]

    def meanwhile(*args):
        before_copy(None)
        store.insert(new, "ws")

    before_copy(meanwhile)
    more = [make(i) for i in range(400, 900)]
    store.insert(more, "ws")  # the log outgrows the snapshot: a compaction in the background
    store.wait_for_compaction()
    expected.update((n.unique_id, n) for n in more + new)
    reopened_sees(tmp_path, expected, [])
    store.insert([make(900)], "ws")
    store.close()
    expected["n900"] = make(900)
    reopened_sees(tmp_path, expected, [])
    check(folder, expected)


def test_the_memory_store_rewrites_a_node_where_it_is():
    """No snapshot holds the memory store's rows: a rewrite keeps the node's place in iteration."""
    s = MemoryVectorStore()
    s.create_workspace("ws")
    s.insert([make(i) for i in range(5)], "ws")
    s.insert([rewritten(1)], "ws")
    assert [n.unique_id for n in s.iter_workspace_nodes("ws")] == [f"n{i}" for i in range(5)]
    assert s.get(["n1"], "ws")[0].content == rewritten(1).content


@pytest.mark.parametrize("index", [None, "hnsw"])
def test_past_the_limit_the_table_goes_on_from_the_file_it_just_wrote(tmp_path, small_files, index):
    """More moved nodes than a sixteenth: the compaction in the writing call (the index's) or at close
    writes the live rows, and the table drops its dead rows onto that file's map (no copy). Writes go
    on from there: appended rows, moves, deletes; the next compaction extends that file."""
    kw = {"index": index} if index else {}
    folder = tmp_path / "ws"
    expected = fill(tmp_path, 1000, **kw)
    s = LocalVectorStore(store_dir=tmp_path, **kw)
    moved = [rewritten(i) for i in range(0, 1000, 5)]  # 200 > 1,200 // 16
    s.insert(moved + [make(i) for i in range(1000, 1200)], "ws")
    s.close() if index is None else s.wait_for_compaction()
    expected.update((n.unique_id, n) for n in moved + [make(i) for i in range(1000, 1200)])
    meta = published(folder)
    assert "dead" not in meta["snapshot"] and meta["snapshot"]["rows"] == 1200  # written without holes
    inode = vectors_inode(folder)
    if index is None:
        s = LocalVectorStore(store_dir=tmp_path, **kw)
    more = [make(i) for i in range(1200, 1500)]
    s.insert(more + [rewritten(1, 2), rewritten(5, 2)], "ws")
    s.delete(["n2", "n1100"], "ws")
    for node in (more[7], rewritten(5, 2)):
        assert hits(s, node.vector, 1) == [(node.unique_id, node.content)]
    s.close()
    expected.update((n.unique_id, n) for n in more + [rewritten(1, 2), rewritten(5, 2)])
    expected.pop("n2"), expected.pop("n1100")
    assert vectors_inode(folder) == inode  # extended
    reopened_sees(tmp_path, expected, ["n2", "n1100"], **kw)
    check(folder, expected)
