"""The local backend reads some rows of a big snapshot without decoding the others (the row index
``snap-<g>.rix``, see stores/local/row_index.py); damage stays reported, a bad index is rebuilt.

``VERIFY_AT_OPEN_BYTES = 0`` makes these small snapshots take the path of big ones.
"""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from tests.helpers.local_files import flip, vec
from vecbook import CorruptedFileError, LocalVectorStore, VectorNode
from vecbook.stores import local
from vecbook.stores.local import row_index

N = 3000
AWKWARD = ['a "quoted" word', "back\\slash", 'end\\"', "\\\\", '"],["', "}{][,:", "line\nbreak", "é漢字🙂", "", "\t\x01"]


def awkward_node(i: int) -> VectorNode:
    """Contents and metadata with every byte that structures a JSON line, escaped or not, and nesting."""
    text = AWKWARD[i % len(AWKWARD)]
    metadata = {"i": i, "text": text, "nested": {"list": [text, i, None, True], "empty": {}}, "f": i / 7}
    if i % 11 == 0:
        metadata = {}
    return VectorNode(unique_id=f"{text}-{i}", content=f"{text} {i}" if i % 5 else "", metadata=metadata, vector=vec(i))


@pytest.fixture
def big(monkeypatch):
    monkeypatch.setattr(local, "VERIFY_AT_OPEN_BYTES", 0)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert([awkward_node(i) for i in range(N)], "ws")
    s.wait_for_compaction()
    s.close()
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 8 << 20)
    return tmp_path / "ws"


def decoded(store: LocalVectorStore) -> bool:
    return store._state("ws").table._lazy is None  # every row of the snapshot was decoded


def check_first_reads(store_dir, asked: list[int]) -> LocalVectorStore:
    """Open, read ``asked`` rows by id (get, then read_columns), check them against the nodes written."""
    s = LocalVectorStore(store_dir=store_dir)
    ids = [awkward_node(i).unique_id for i in asked]
    got = s.get(ids + ["missing"], "ws")
    assert [n.unique_id for n in got] == ids
    for n, i in zip(got, asked):
        want = awkward_node(i)
        assert (n.content, n.metadata, n.vector.tobytes()) == (want.content, want.metadata, want.vector.tobytes())
    columns = s.read_columns("ws", node_ids=list(reversed(ids)), columns=["ids", "contents", "metadatas"])
    assert columns.ids == list(reversed(ids))
    assert columns.contents == [awkward_node(i).content for i in reversed(asked)]
    assert columns.metadatas == [awkward_node(i).metadata for i in reversed(asked)]
    assert not decoded(s)
    return s


def test_the_first_reads_after_an_open_decode_just_their_rows(folder, big):
    assert (folder / "snap-000001.rix").exists()  # written by the compaction
    asked = random.Random(1).sample(range(N), 500)
    s = check_first_reads(folder.parent, asked)
    hit = s.search_by_vector(vec(1234), "ws", top_k=1)[0]
    assert (hit.unique_id, hit.content) == (awkward_node(1234).unique_id, awkward_node(1234).content) and not decoded(s)
    assert s.count("ws", filter_dict={"i": {"lt": 100}}) == 100 - len(range(0, 100, 11)) and decoded(s)  # a filter: every row
    s.close()


def test_a_missing_damaged_or_foreign_row_index_is_rebuilt(folder, big, tmp_path, monkeypatch):
    index = folder / "snap-000001.rix"
    good = index.read_bytes()
    for spoil in (index.unlink, lambda: flip(index, len(good) // 2), lambda: flip(index, 30)):
        spoil()
        check_first_reads(folder.parent, [0, 1, 17, N - 1]).close()
        assert index.read_bytes() == good
    other = tmp_path / "other"  # the index of another snapshot with as many rows is not taken
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    s = LocalVectorStore(store_dir=other)
    s.create_workspace("ws")
    s.insert([VectorNode(unique_id=f"x{i}", content="x", vector=vec(i)) for i in range(N)], "ws")
    s.wait_for_compaction()
    s.close()
    shutil.copy(other / "ws" / "snap-000001.rix", index)
    check_first_reads(folder.parent, [5, 6, 2999]).close()
    assert index.read_bytes() == good


def test_a_damaged_block_of_the_row_index_is_found_when_used_and_rebuilt(folder, big, monkeypatch):
    monkeypatch.setattr(row_index, "_BLOCK", 4096)  # many blocks, each verified when a call first uses it
    index = folder / "snap-000001.rix"
    index.unlink()
    check_first_reads(folder.parent, [1, 2]).close()
    good = index.read_bytes()
    for offset in (len(good) - 100, len(good) // 2):  # in the rows' order by hash, then in the spans
        flip(index, offset)
        check_first_reads(folder.parent, list(range(0, N, 2))).close()  # half the rows: still read through the index
        assert index.read_bytes() == good


def test_a_flipped_bit_in_a_row_nobody_reads_is_reported(folder, big):
    rows = folder / "snap-000001.json"
    raw = rows.read_bytes()
    last_line = raw.rindex(b"\n", 0, len(raw) - 1) + 1
    flip(rows, last_line + 20)  # among the last rows' ids
    s = LocalVectorStore(store_dir=folder.parent)
    try:
        s.get(awkward_node(3).unique_id, "ws")  # may answer: its line is intact, verification runs meanwhile
    except CorruptedFileError:
        pass
    with pytest.raises(CorruptedFileError) as err:
        s._state("ws").verifier.wait()
    assert err.value.path == str(rows)
    with pytest.raises(CorruptedFileError):
        s.get(awkward_node(4).unique_id, "ws")
    s.close()
    s = LocalVectorStore(store_dir=folder.parent)
    with pytest.raises(CorruptedFileError) as err:  # reading a row of the damaged line checks it first
        s.read_columns("ws", node_ids=[awkward_node(N - 2).unique_id], columns=["contents"])
    assert err.value.path == str(rows)
    s.close()


def test_rows_written_after_a_compaction_keep_the_index_right(folder, big, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    s = LocalVectorStore(store_dir=folder.parent)
    s.insert([VectorNode(unique_id=f"new{i}", content=f"new {i}", metadata={"n": i}, vector=vec(i)) for i in range(500)], "ws")
    s.wait_for_compaction()  # starts from the published snapshot's rows: copied, with their index entries
    s.close()
    s = check_first_reads(folder.parent, [0, 1234, N - 1])
    got = s.read_columns("ws", node_ids=["new499", "new0"], columns=["contents", "metadatas"])
    assert got.contents == ["new 499", "new 0"] and got.metadatas == [{"n": 499}, {"n": 0}] and not decoded(s)
    assert np.array_equal(s.get("new7", "ws")[0].vector, vec(7))
    s.close()
