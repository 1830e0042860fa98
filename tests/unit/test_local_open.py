"""Opening a big local workspace (issue 15): the snapshot is mapped, its rows decoded when used,
its checksums verified in the background; damage is still reported, and never published.

``VERIFY_AT_OPEN_BYTES = 0`` makes these small snapshots take the path of big ones.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.local_files import compacted, flip, node, vec
import vecbook
from vecbook import CorruptedFileError, LocalVectorStore, VectorNode
from vecbook.stores import local


@pytest.fixture
def big(monkeypatch):
    monkeypatch.setattr(local, "VERIFY_AT_OPEN_BYTES", 0)


def generation(folder) -> int:
    return json.loads((folder / "meta.json").read_text())["generation"]


def test_a_mapped_snapshot_answers_like_a_read_one(tmp_path, big):
    compacted(tmp_path, n=3000)
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.count("ws") == 3000
    hit = s.search_by_vector(vec(1234), "ws", top_k=3)[0]
    assert (hit.unique_id, hit.content, hit.metadata["i"]) == ("n1234", "text n1234", 1234)
    assert hit.vector.tobytes() == vec(1234).tobytes()
    assert s.get("n7", "ws")[0].metadata == {"i": 7, "p": "n"}
    s.insert(node(7, prefix="m"), "ws")  # after the rows are decoded: a write
    s.delete(["n8"], "ws")
    assert s.count("ws") == 3000
    assert [n.unique_id for n in s.search_by_vector(vec(7), "ws", top_k=2)] in (["n7", "m7"], ["m7", "n7"])
    s.close()
    again = LocalVectorStore(store_dir=tmp_path)
    assert again.count("ws") == 3000 and not again.get("n8", "ws")
    assert (tmp_path / "ws" / "snap-000001.f32").read_bytes()[8 * 64 : 9 * 64] == vec(8).tobytes()  # the map is private


def test_a_flipped_bit_in_mapped_vectors_is_reported_once_verified(tmp_path, big):
    folder = compacted(tmp_path, n=3000)
    f32 = folder / "snap-000001.f32"
    flip(f32, 3000 * 16 * 4 // 2)
    s = LocalVectorStore(store_dir=tmp_path)
    try:
        s.count("ws")  # may answer: verification runs meanwhile
    except CorruptedFileError:
        pass
    with pytest.raises(CorruptedFileError) as err:
        s._state("ws").verifier.wait()
    assert err.value.path == str(f32)
    for call in (lambda: s.count("ws"), lambda: s.search_by_vector(vec(1), "ws"), lambda: s.insert(node(1, prefix="x"), "ws")):
        with pytest.raises(CorruptedFileError) as err:
            call()
        assert err.value.path == str(f32)
    report = s.repair("ws")
    assert report["repaired"] and s.count("ws") == 3000 - report["lost_nodes"]


def test_a_compaction_never_publishes_a_damaged_snapshot(tmp_path, big, monkeypatch):
    folder = compacted(tmp_path, n=3000)
    flip(folder / "snap-000001.f32", 100)
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)  # every write starts a compaction
    s = LocalVectorStore(store_dir=tmp_path)
    try:
        s.insert([node(i, prefix="x") for i in range(3000)], "ws")
    except CorruptedFileError:
        pass
    s.wait_for_compaction()
    assert generation(folder) == 1
    with pytest.raises(CorruptedFileError):
        s.count("ws")


def test_a_flipped_bit_in_mapped_rows_is_reported(tmp_path, big):
    folder = compacted(tmp_path, n=3000)
    rows = folder / "snap-000001.json"
    first_line = rows.read_bytes().index(b"\n")
    flip(rows, first_line + 40)  # in the first rows
    s = LocalVectorStore(store_dir=tmp_path)
    with pytest.raises(CorruptedFileError) as err:
        s.search_by_vector(vec(0), "ws", top_k=1)
        s._state("ws").verifier.wait()
    assert err.value.path == str(rows)


@pytest.mark.parametrize("run_bytes", [1, 3 * 4096, 16 << 20])
def test_the_verifier_names_the_damaged_line_inside_a_run_of_lines(tmp_path, big, monkeypatch, run_bytes):
    """The background check takes the rows' lines a run at a time; a flipped byte in a line nobody reads,
    in the middle of a run, is reported at that line's first byte."""
    from vecbook.stores.local import snapshot

    monkeypatch.setattr(snapshot, "_CRC_RUN_BYTES", run_bytes)
    folder = compacted(tmp_path, n=3000)
    rows = folder / "snap-000001.json"
    data = rows.read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]
    line = len(starts) * 2 // 3
    flip(rows, starts[line] + 25)
    s = LocalVectorStore(store_dir=tmp_path)
    with pytest.raises(CorruptedFileError) as err:
        s._state("ws").verifier.wait()
    assert (err.value.path, err.value.offset) == (str(rows), starts[line])


def test_close_compacts_a_long_log_so_the_next_open_replays_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 1 << 30)  # no compaction while writing: the whole log is left to close()
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    for start in range(0, 1000, 100):
        s.insert([VectorNode(unique_id=f"n{i}", vector=np.full(64, i, dtype=np.float32)) for i in range(start, start + 100)], "ws")
    s.wait_for_compaction()
    assert generation(tmp_path / "ws") == 0
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 64 << 10)  # the ~280 KB log is now long
    s.close()
    g = generation(tmp_path / "ws")
    assert (tmp_path / "ws" / f"log-{g:06d}.bin").stat().st_size == 0
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 1000


def test_a_short_log_is_left_for_the_next_open(tmp_path):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert(node(1), "ws")
    s.close()
    assert generation(tmp_path / "ws") == 0 and (tmp_path / "ws" / "log-000000.bin").stat().st_size > 0


def test_a_damaged_or_missing_norms_cache_is_recomputed(tmp_path, big):
    folder = compacted(tmp_path, n=3000)
    norms = folder / "snap-000001.nrm"
    flip(norms, norms.stat().st_size - 3)
    assert LocalVectorStore(store_dir=tmp_path).search_by_vector(vec(42), "ws", top_k=1)[0].unique_id == "n42"
    norms.unlink()
    assert LocalVectorStore(store_dir=tmp_path).search_by_vector(vec(43), "ws", top_k=1)[0].unique_id == "n43"


def _decoded(store: LocalVectorStore) -> bool:
    return store._state("ws").table._lazy is None  # the snapshot's JSON rows were all decoded


def test_ids_are_read_from_the_snapshots_id_cache_without_decoding_rows(tmp_path, big):
    folder = compacted(tmp_path, n=3000, in_log=0)
    assert (folder / "snap-000001.ids").exists()
    s = LocalVectorStore(store_dir=tmp_path)
    columns = s.read_columns("ws", columns=["ids", "vectors"], offset=100, limit=5)
    assert columns.ids == [f"n{i}" for i in range(100, 105)] and columns.vectors.shape == (5, 16)
    got = s.get(["n7", "n2999", "missing"], "ws")  # a lookup decodes only the lines of its rows
    assert sorted(n.unique_id for n in got) == ["n2999", "n7"] and not _decoded(s)
    s.delete(["n7"], "ws")  # writes need the ids alone: the rows stay undecoded
    s.insert(node(3000), "ws")
    s.insert([VectorNode(unique_id="n9", content="rewritten", metadata={"new": True}, vector=vec(9))], "ws")  # replaces n9
    assert not _decoded(s)
    assert s.get(["n7"], "ws") == [] and s.get("n8", "ws")[0].content == node(8).content
    assert s.get("n9", "ws")[0].content == "rewritten" and s.get("n3000", "ws")[0].content == node(3000).content
    assert len(s.read_columns("ws", columns=["ids"])) == 3000 and not _decoded(s)
    everything = s.read_columns("ws", columns=["ids", "contents", "metadatas"])  # decodes, the writes laid over
    assert _decoded(s) and len(everything) == 3000 and "n7" not in everything.ids
    rows = dict(zip(everything.ids, zip(everything.contents, everything.metadatas)))
    assert rows["n9"] == ("rewritten", {"new": True}) and rows["n3000"] == (node(3000).content, node(3000).metadata)
    assert rows["n8"] == (node(8).content, node(8).metadata)
    s.close()


def test_a_damaged_or_missing_id_cache_means_reading_every_id_decodes_the_rows(tmp_path, big):
    folder = compacted(tmp_path, n=3000)
    cache = folder / "snap-000001.ids"
    flip(cache, cache.stat().st_size - 3)
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.read_columns("ws", columns=["ids"]).ids == [f"n{i}" for i in range(3000)] and _decoded(s)
    s.close()
    cache.unlink()
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.get("n42", "ws")[0].unique_id == "n42" and not _decoded(s)  # a lookup goes through the row index
    assert s.read_columns("ws", columns=["ids"]).ids[42] == "n42" and _decoded(s)
    s.close()


def test_writes_on_undecoded_rows_agree_with_an_oracle_through_reads_filters_and_a_reopen(tmp_path, big):
    """Random upserts (new ids, ids of the snapshot, ids written since) and deletes on a store whose
    snapshot rows are not decoded, checked after each step against a memory store by the reads that
    stay undecoded (get, read_columns of ids) and at the end by the ones that decode (a filter, every row)."""
    compacted(tmp_path, n=3000)
    s = LocalVectorStore(store_dir=tmp_path)
    oracle = vecbook.MemoryVectorStore()
    oracle.create_workspace("ws")
    oracle.insert([node(i) for i in range(3000)], "ws")
    rng = np.random.default_rng(7)
    for step in range(60):
        if rng.random() < 0.25:
            ids = [f"n{i}" for i in rng.integers(0, 3200, size=int(rng.integers(1, 20)))]
            s.delete(ids, "ws"), oracle.delete(ids, "ws")
        else:
            picks = rng.choice(3200, size=int(rng.integers(1, 30)), replace=False)
            batch = [VectorNode(unique_id=f"n{i}", content=f"step {step} {i}", metadata={"step": step, "i": int(i)}, vector=vec(10_000 + step)) for i in picks]
            s.insert(batch, "ws"), oracle.insert(batch, "ws")
        asked = [f"n{i}" for i in rng.integers(0, 3200, size=40)]
        assert {n.unique_id: (n.content, n.metadata) for n in s.get(asked, "ws")} == {n.unique_id: (n.content, n.metadata) for n in oracle.get(asked, "ws")}
        if step % 20 == 10:  # every id (from the id cache, the writes laid over it), then kept in step by the writes after
            assert sorted(s.read_columns("ws", columns=["ids"]).ids) == sorted(oracle.read_columns("ws", columns=["ids"]).ids)
        assert not _decoded(s)
    assert s.count("ws") == oracle.count("ws")
    late = {"step": {"gte": 30}}
    assert sorted(n.unique_id for n in s.iter_workspace_nodes("ws", filter_dict=late)) == sorted(n.unique_id for n in oracle.iter_workspace_nodes("ws", filter_dict=late))
    assert _decoded(s)
    for store in (s, LocalVectorStore(store_dir=tmp_path)):  # decoded here, and after a close (compaction) and a reopen
        got = store.read_columns("ws", columns=["ids", "contents", "metadatas"])
        want = oracle.read_columns("ws", columns=["ids", "contents", "metadatas"])
        assert sorted(zip(got.ids, got.contents, map(repr, got.metadatas))) == sorted(zip(want.ids, want.contents, map(repr, want.metadatas)))
        store.close()


def test_writes_after_an_open_read_no_list_of_every_id(tmp_path, big, monkeypatch):
    """A write looks its ids up in the snapshot's row index: it reads no id cache and decodes no row."""
    from vecbook.stores.local import snapshot_rows

    compacted(tmp_path, n=3000)
    monkeypatch.setattr(snapshot_rows, "read_ids", lambda *a: pytest.fail("a write read every id"))
    s = LocalVectorStore(store_dir=tmp_path)
    s.insert(node(3000), "ws")
    s.insert([VectorNode(unique_id="n9", content="rewritten", metadata={"new": True}, vector=vec(9))], "ws")
    s.delete(["n7", "n3000", "missing", "n7"], "ws")
    assert s.count("ws") == 2999
    s.insert(node(7), "ws")  # back, in a row of its own
    s.insert([node(5), node(3001)], "ws")  # an id of the snapshot (rewritten) and a new one
    got = {n.unique_id: n.content for n in s.get(["n7", "n9", "n3000", "n8", "n5", "n3001"], "ws")}
    assert got == {"n7": node(7).content, "n9": "rewritten", "n8": node(8).content, "n5": node(5).content, "n3001": node(3001).content}
    assert s.count("ws") == 3001 and not _decoded(s)
    s.close()
    s = LocalVectorStore(store_dir=tmp_path)  # the log replayed the same way
    assert s.count("ws") == 3001 and s.get("n9", "ws")[0].content == "rewritten" and s.get("n3000", "ws") == []
    s.close()


def test_a_small_snapshot_is_decoded_at_open(tmp_path):
    compacted(tmp_path, n=300)
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.count("ws") == 300 and _decoded(s)  # below VERIFY_AT_OPEN_BYTES: damage in a row shows at open
    s.close()
