"""The index saved with rows waiting beside its mapped graph (engine/ann_files.py): what a close or a
compaction writes, what an open believes, and what it does with damaged, missing or older files.

The writes themselves are test_ann_writes_after_open.py's; its helpers are used here.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.test_ann import WIDE, graph_work, ids, nodes, requires_usearch, small_compactions, unit_vectors  # noqa: F401 - a fixture
from tests.unit.test_ann_writes_after_open import reopened_with_a_map
from vecbook import LocalVectorStore
from vecbook.stores import local as local_module
from vecbook.stores.engine import ann, ann_files, table_index


def reopened_with_a_failing_check(tmp_path, monkeypatch):
    """Workspace "w" of 2,000 nodes saved with its graph and opened again, the graph's background checksum made to
    fail; returns the store and a function that makes checksums true again."""
    from vecbook.stores.engine import ann_files

    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    store.insert(nodes(unit_vectors(2000)), "w")
    store.close()
    real_crc = ann_files._crc_of
    monkeypatch.setattr(ann_files, "VERIFY_INLINE_BYTES", 0)  # checked in the background
    monkeypatch.setattr(ann_files, "_crc_of", lambda f: real_crc(f) ^ (1 if f.name.endswith(".usearch") else 0))
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    return reopened, lambda: monkeypatch.setattr(ann_files, "_crc_of", real_crc)


@requires_usearch
def test_a_close_never_copies_a_mapped_graph_that_failed_its_check(tmp_path, small_compactions, monkeypatch):
    """The fold at close waits for the background check of the mapped graph and leaves a damaged one alone."""
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_WAITING", 20)
    reopened, checksums_true = reopened_with_a_failing_check(tmp_path, monkeypatch)
    graph = next((tmp_path / "w").glob("snap-*.usearch"))
    inode = graph.stat().st_ino
    reopened.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    copies = graph_work(monkeypatch)
    reopened.close()
    assert copies == [] and graph.stat().st_ino == inode  # not taken into a copy, not saved
    checksums_true()
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    assert ids(again.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    assert again.count("w") == 2030
    again.close()


@requires_usearch
def test_a_write_past_the_limit_drops_a_mapped_graph_that_failed_its_check_instead_of_copying_it(tmp_path, small_compactions, monkeypatch):
    monkeypatch.setattr(table_index, "WAITING_FLOOR", 20)
    monkeypatch.setattr(table_index, "WAITING_SHARE", 1 << 30)  # no share of the graph's rows above that
    reopened, checksums_true = reopened_with_a_failing_check(tmp_path, monkeypatch)
    copies = graph_work(monkeypatch)
    reopened.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    reopened.delete([f"n{i}" for i in range(21)], "w")  # 21 stale entries, past the limit: a fold would copy the graph
    assert copies == [] and reopened._state("w").table.index is None  # dropped: searches go exact
    assert ids(reopened.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    assert ids(reopened.search_by_vector(unit_vectors(2000)[70], "w", top_k=1)) == ["n70"]
    assert "n3" not in ids(reopened.search_by_vector(unit_vectors(2000)[3], "w", top_k=10))
    reopened.close()
    checksums_true()
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    assert again._state("w").table.index is not None and copies  # rebuilt from the rows
    assert ids(again.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    again.close()


def carried_over(tmp_path, monkeypatch) -> tuple:
    """A store opened with its graph, 30 nodes inserted and one deleted, compacted at close with the graph carried over."""
    monkeypatch.setattr(local_module, "MIN_COMPACT_BYTES", 1)  # the close compacts
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_BYTES", 0)  # and carries the graph over as big ones are
    store = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    store.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    store.delete(["n1"], "w")
    store.close()
    generation = LocalVectorStore(store_dir=tmp_path)._state("w").generation
    return tmp_path / "w" / f"snap-{generation:06d}.ann.json", generation


@requires_usearch
def test_a_sidecar_whose_waiting_list_was_damaged_is_not_believed(tmp_path, monkeypatch):
    """One waiting label changed to an indexed row's would hide that row from every search: the sidecar's
    own checksum catches it, and the open rebuilds the graph (with a warning) instead."""
    sidecar, _ = carried_over(tmp_path, monkeypatch)
    meta = json.loads(sidecar.read_text())
    assert meta["format"] == "usearch-3" and len(meta["unindexed"]) == 30 and len(meta["gone"]) == 1 and meta["crc_side"] is not None
    meta["unindexed"][0] -= 1  # still a row's label, so only the checksum can tell
    sidecar.write_text(json.dumps(meta))
    built = graph_work(monkeypatch)
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = store._state("w").table
    assert built and not table._unindexed  # rebuilt from the rows
    assert ids(store.search_by_vector(unit_vectors(30, seed=32)[0], "w", top_k=1)) == ["n5000"]
    store.close()


@requires_usearch
def test_an_index_saved_before_waiting_lists_opens_as_a_graph_holding_every_row(tmp_path, small_compactions, monkeypatch):
    """A -1 sidecar (every saved graph then held every row) still opens as the mapped graph, with nothing waiting."""
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    store.insert(nodes(unit_vectors(2000)), "w")
    store.close()
    sidecar = next((tmp_path / "w").glob("snap-*.ann.json"))
    meta = json.loads(sidecar.read_text())
    for key in ("unindexed", "gone", "graph_below", "crc"):
        del meta[key]
    sidecar.write_text(json.dumps({**meta, "format": "usearch-1"}))
    built = graph_work(monkeypatch)
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = reopened._state("w").table
    assert built == [] and table.index.viewed and not table._unindexed and table._graph_below == 2000
    reopened.insert(nodes(unit_vectors(1, seed=9), start=7000), "w")
    assert table._unindexed and ids(reopened.search_by_vector(unit_vectors(1, seed=9)[0], "w", top_k=1)) == ["n7000"]
    reopened.close()


@requires_usearch
def test_without_hard_links_a_carried_over_graph_is_written_out(tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(ann.os, "link", no_links)
    sidecar, generation = carried_over(tmp_path, monkeypatch)
    first = tmp_path / "w" / "snap-000001.usearch"
    assert not first.exists() and (tmp_path / "w" / f"snap-{generation:06d}.usearch").stat().st_nlink == 1
    built = graph_work(monkeypatch)
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = store._state("w").table
    assert built == [] and table.index.viewed and len(table._unindexed) == 30
    assert ids(store.search_by_vector(unit_vectors(30, seed=32)[4], "w", top_k=1)) == ["n5004"]
    assert "n1" not in ids(store.search_by_vector(unit_vectors(2000)[1], "w", top_k=10))
    store.close()


def counting_side_adds(monkeypatch) -> list[int]:
    """The number of labels of each add to a graph held in RAM (the small graph of waiting rows, or a built one)."""
    adds: list[int] = []
    real_add = ann.HnswIndex.add
    monkeypatch.setattr(ann.HnswIndex, "add", lambda self, labels, vectors: (adds.append(len(labels)), real_add(self, labels, vectors)))
    return adds


@requires_usearch
def test_the_graph_of_the_waiting_rows_is_saved_and_read_back_not_rebuilt(tmp_path, monkeypatch):
    sidecar, generation = carried_over(tmp_path, monkeypatch)
    side_file = sidecar.with_name(f"snap-{generation:06d}.side.usearch")
    assert side_file.exists()
    adds = counting_side_adds(monkeypatch)
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = store._state("w").table
    assert adds == [] and table.index.viewed and len(table._side) == 30  # read whole, no row added again
    assert ids(store.search_by_vector(unit_vectors(30, seed=32)[9], "w", top_k=1)) == ["n5009"]
    store.close()


@requires_usearch
@pytest.mark.parametrize("damage", ["flipped", "missing", "format-2"])
def test_a_damaged_or_missing_graph_of_the_waiting_rows_is_built_from_those_rows(tmp_path, monkeypatch, caplog, damage):
    """Only the small graph is built again (from its 30 rows): the big one still opens as the saved map."""
    sidecar, generation = carried_over(tmp_path, monkeypatch)
    side_file = sidecar.with_name(f"snap-{generation:06d}.side.usearch")
    if damage == "flipped":
        data = bytearray(side_file.read_bytes())
        data[len(data) // 2] ^= 0x10
        side_file.write_bytes(bytes(data))
    elif damage == "missing":
        side_file.unlink()
    else:  # saved by a version that kept no graph of the waiting rows: they are listed, no more
        side_file.unlink()
        meta = json.loads(sidecar.read_text())
        del meta["crc_side"]
        meta["format"] = "usearch-2"
        meta["crc"] = ann_files._sidecar_crc(meta)
        sidecar.write_text(json.dumps(meta))
    work, adds = graph_work(monkeypatch), counting_side_adds(monkeypatch)
    with caplog.at_level("WARNING", logger="vecbook.ann"):
        store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
        table = store._state("w").table
    assert work == [] and adds == [30] and table.index.viewed and len(table._side) == 30
    warned = [r.getMessage() for r in caplog.records if r.name == "vecbook.ann"]
    assert (len(warned) == 1 and "building it from those rows" in warned[0]) if damage != "format-2" else not warned
    for i in (0, 17, 29):
        assert ids(store.search_by_vector(unit_vectors(30, seed=32)[i], "w", top_k=1)) == [f"n{5000 + i}"]
    assert "n1" not in ids(store.search_by_vector(unit_vectors(2000)[1], "w", top_k=10))
    store.close()


@requires_usearch
def test_a_background_check_verifies_the_files_it_loaded_not_the_ones_another_store_saved_since(tmp_path, monkeypatch):
    """Store B checks its mapped graph and labels in the background while store A's close saves what waits
    beside the same graph under the same names: B's check reads the files B loaded, finds them intact,
    and leaves A's sidecar in place for the next open."""
    import threading

    monkeypatch.setattr(local_module, "CHECKPOINT_BYTES", 1 << 10)
    monkeypatch.setattr(ann_files, "VERIFY_INLINE_BYTES", 0)  # checked in the background
    first = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    first.create_workspace("w")
    first.insert(nodes(unit_vectors(2000)), "w")
    first.close()
    a = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    assert a._state("w").table.index.viewed and a._state("w").table.index.checked_intact()
    go = threading.Event()
    real_lower = ann_files.lower_this_threads_priority
    monkeypatch.setattr(ann_files, "lower_this_threads_priority", lambda: (go.wait(30), real_lower()))
    b = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    b_index = b._state("w").table.index
    assert b_index.viewed and b_index.verifier.is_alive()  # held before it reads a byte
    a.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    a.close()  # saves the labels, the small graph and the sidecar of the same generation, in place
    sidecar = next((tmp_path / "w").glob("snap-*.ann.json"))
    assert len(json.loads(sidecar.read_text())["unindexed"]) == 30
    go.set()
    assert b_index.checked_intact() and sidecar.exists()
    b.close()
    work = graph_work(monkeypatch)
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert work == [] and table.index.viewed and len(table._unindexed) == 30 and table.index.checked_intact()
    assert ids(again.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    again.close()
