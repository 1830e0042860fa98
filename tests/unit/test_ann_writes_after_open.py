"""Writes after an open wait beside the mapped graph (engine/table_index.py): nothing copied until they fold in.

The helpers and the sizes are test_ann.py's; the 10M figures are in docs/performance.md
(bench/bench_scale_after_open.py).
"""

from __future__ import annotations


import numpy as np
import pytest

from tests.unit.test_ann import WIDE, graph_work, ids, nodes, requires_usearch, small_compactions, unit_vectors, wide_vectors  # noqa: F401 - a fixture
from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode
from vecbook.stores import local as local_module
from vecbook.stores.engine import ann, table_index


def reopened_with_a_map(tmp_path, params: dict, data: list) -> LocalVectorStore:
    """A local store whose workspace "w" holds ``data``, saved with its graph and opened again (the graph a map)."""
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    store.create_workspace("w")
    store.insert(data, "w")
    store.close()
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    assert reopened._state("w").table.index.viewed
    return reopened


@requires_usearch
@pytest.mark.parametrize("quantization", [None, "int8"])
def test_writes_beside_a_mapped_graph_agree_with_exact_search(tmp_path, small_compactions, monkeypatch, quantization):
    """Inserts, rewrites (same id, new vector) and deletes after an open, checked against exact search."""
    data = nodes(wide_vectors(3000))
    params = {**WIDE, "quantization": quantization}
    store = reopened_with_a_map(tmp_path, params, data)
    exact = MemoryVectorStore()
    exact.create_workspace("w")
    exact.insert(data, "w")
    built = graph_work(monkeypatch)
    rng = np.random.default_rng(21)
    live, moved, deleted, fresh = {n.unique_id for n in data}, {}, set(), {}
    vectors = {n.unique_id: n.vector for n in data}
    for step in range(30):
        if step % 3 == 0:  # new nodes
            batch = nodes(wide_vectors(5, seed=100 + step), start=10_000 + 10 * step)
            fresh.update({n.unique_id: n.vector for n in batch})
        elif step % 3 == 1:  # existing nodes moved to another place
            targets = rng.choice(sorted(live), 5, replace=False)
            batch = [VectorNode(unique_id=t, content="moved", vector=v) for t, v in zip(targets, wide_vectors(5, seed=200 + step))]
            moved.update({n.unique_id: n.vector for n in batch})
        else:
            gone = list(rng.choice(sorted(live), 5, replace=False))
            for store_ in (store, exact):
                store_.delete(gone, "w")
            live -= set(gone)
            deleted |= set(gone)
            moved = {k: v for k, v in moved.items() if k not in deleted}
            fresh = {k: v for k, v in fresh.items() if k not in deleted}
            for node_id in gone:  # gone from the very next search (rows renumbered by a compaction or not)
                assert node_id not in ids(store.search_by_vector(vectors[node_id], "w", top_k=10))
            continue
        for store_ in (store, exact):
            store_.insert(batch, "w")
        live |= {n.unique_id for n in batch}
        vectors.update({n.unique_id: n.vector for n in batch})
        for node in batch:  # found at its new place by the very next search
            assert ids(store.search_by_vector(node.vector, "w", top_k=1)) == [node.unique_id]
    table = store._state("w").table
    index = table.index
    assert built == [] and index.viewed and index.nbytes == 0  # nothing copied, nothing added to the big graph
    assert len(table._side) == len(table._unindexed) == len(moved) + len(fresh)  # the small graph holds what waits
    assert (np.diff(table._labels[: table.n_rows]) > 0).all()
    assert store.count("w") == exact.count("w") == len(live)
    for node_id, vector in [*moved.items(), *fresh.items()]:  # each written node is found at its new place
        assert ids(store.search_by_vector(vector, "w", top_k=1)) == [node_id]
    queries = np.vstack([wide_vectors(40, seed=7), *list(moved.values())[:10]])
    got, want = store.batch_search(queries, "w", top_k=10), exact.batch_search(queries, "w", top_k=10)
    assert float(np.mean([len(set(ids(a)) & set(ids(b))) / 10 for a, b in zip(got, want)])) >= 0.95
    for q, hits in zip(queries, got):
        assert not set(ids(hits)) & deleted and len(hits) == 10
        for hit in hits:  # the scores are the exact ones of the current vectors
            assert abs(hit.metadata["score"] - float(exact.get([hit.unique_id], "w")[0].vector @ q)) < 1e-5
    store.close()
    exact.close()


@requires_usearch
def test_searches_between_writes_see_the_waiting_rows_as_they_are_now(tmp_path, small_compactions):
    """What waits beside the graph is kept between searches: a write, even one that renumbers the rows, changes it at once."""
    centre = unit_vectors(1, seed=39)[0]

    def clustered(n: int, seed: int) -> np.ndarray:  # every row near ``centre``: a query of -centre scores them all below 0
        rows = centre + 0.5 * unit_vectors(n, seed=seed)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    vectors, fresh = clustered(2000, 0), clustered(6, 40)
    store = reopened_with_a_map(tmp_path, WIDE, nodes(vectors))
    for written in (3, 6):  # the second insert adds to rows already waiting, and already searched
        store.insert(nodes(fresh, start=5000)[written - 3 : written], "w")
        for i, v in enumerate(fresh[:written]):
            assert ids(store.search_by_vector(v, "w", top_k=1)) == [f"n{5000 + i}"]
    store.delete(["n5000"], "w")  # a waiting row deleted: never a result again, though its place would score best
    far = store.search_by_vector(-centre, "w", top_k=5)
    assert "n5000" not in ids(far) and all(h.metadata["score"] < 0 for h in far)
    store.delete([f"n{i}" for i in range(1100)], "w")  # so many dead rows that the table renumbers its rows
    assert store._state("w").table.n_rows == 2000 - 1100 + 5
    for i, v in enumerate(fresh[1:], start=1):
        assert ids(store.search_by_vector(v, "w", top_k=1)) == [f"n{5000 + i}"]
    assert ids(store.search_by_vector(vectors[1500], "w", top_k=1)) == ["n1500"]
    store.close()


@requires_usearch
def test_waiting_writes_go_into_the_graph_once_it_holds_too_many_stale_entries(tmp_path, small_compactions, monkeypatch):
    """Deleted and rewritten rows leave stale entries in the mapped graph (each costs a search a spare
    candidate); past the limit the write folds."""
    monkeypatch.setattr(table_index, "WAITING_FLOOR", 70)
    monkeypatch.setattr(table_index, "WAITING_SHARE", 1 << 30)  # no share of the graph's rows above that
    vectors = unit_vectors(2000)
    store = reopened_with_a_map(tmp_path, WIDE, nodes(vectors))
    built = graph_work(monkeypatch)
    store.insert(nodes(unit_vectors(52, seed=30), start=5000), "w")
    store.delete(["n1", "n2", "n3"], "w")  # 3 stale
    table = store._state("w").table
    index = table.index
    assert built == [] and index.viewed and len(table._side) == 52  # the new rows wait in the small graph
    store.delete([f"n500{i}" for i in range(5)], "w")  # never in the big graph: taken out of the small one
    assert len(table._side) == 47 and len(table._gone) == 3
    rewritten = [VectorNode(unique_id=f"n{i}", content="again", vector=v) for i, v in zip(range(10, 26), unit_vectors(16, seed=31))]
    store.insert(rewritten, "w")
    store.insert(rewritten[:4], "w")  # rewritten twice: still one stale entry each
    # the snapshot's rows are never rewritten in place: each rewritten node moved to a new row, its old label gone
    assert built == [] and len(table._gone) == 3 + 16 and table._replaced == 0 and len(table._side) == 47 + 16  # 19 stale
    store.delete([f"n{i}" for i in range(100, 151)], "w")  # 70 stale: still within the limit
    assert built == [] and index.viewed and len(table._gone) == 70
    store.insert([VectorNode(unique_id=f"n{i}", content="again", vector=v) for i, v in zip((30, 31), unit_vectors(2, seed=32))], "w")
    assert built == [("copy", 2000)] and not index.viewed and table._side is None  # 72 stale: all went in at once
    assert len(index) == 2000 - 70 + 47 + 16 and not table._unindexed and not table._gone and table._replaced == 0
    assert ids(store.search_by_vector(unit_vectors(52, seed=30)[7], "w", top_k=1)) == ["n5007"]
    assert ids(store.search_by_vector(unit_vectors(16, seed=31)[5], "w", top_k=1)) == ["n15"]
    assert ids(store.search_by_vector(unit_vectors(2, seed=32)[1], "w", top_k=1)) == ["n31"]
    for i in (2, 120):
        assert f"n{i}" not in ids(store.search_by_vector(vectors[i], "w", top_k=10))
    store.close()


@requires_usearch
def test_a_bulk_load_past_the_limit_goes_into_one_graph_from_that_write_on(tmp_path, small_compactions, monkeypatch):
    """Rows wait in the small graph up to the limit; the write that would pass it folds them into the big
    graph with its own rows, and later writes go straight in: only the rows that waited are added twice,
    and the close has nothing left to fold."""
    monkeypatch.setattr(table_index, "WAITING_FLOOR", 200)
    monkeypatch.setattr(table_index, "WAITING_SHARE", 1 << 30)
    store = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    built, added = graph_work(monkeypatch), graph_adds(monkeypatch)
    fresh = nodes(unit_vectors(1000, seed=33), start=5000)
    for part in range(0, 200, 100):
        store.insert(fresh[part : part + 100], "w")
    table = store._state("w").table
    assert built == [] and table.index.viewed and len(table._side) == 200  # at the limit: they wait
    store.insert(fresh[200:300], "w")
    assert built == [("copy", 2000)] and added == [100, 100, 300] and table._side is None and not table.index.viewed
    for part in range(300, 1000, 100):
        store.insert(fresh[part : part + 100], "w")
    assert added[3:] == [100] * 7 and len(table.index) == store.count("w") == 3000
    for node in fresh[::37]:
        assert ids(store.search_by_vector(node.vector, "w", top_k=1)) == [node.unique_id]
    store.close()
    assert added[10:] == [] and built == [("copy", 2000)]  # the close saved the graph as it was
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert table.index.viewed and table._side is None and len(table.index) == 3000
    assert ids(again.search_by_vector(fresh[999].vector, "w", top_k=1)) == [fresh[999].unique_id]
    again.close()


def graph_adds(monkeypatch) -> list[int]:
    """How many rows each add to a graph (big or small) puts in, from now on."""
    counts: list[int] = []
    real_add = ann.HnswIndex.add

    def add(self, labels, vectors):
        counts.append(len(labels))
        return real_add(self, labels, vectors)

    monkeypatch.setattr(ann.HnswIndex, "add", add)
    return counts


@requires_usearch
@pytest.mark.parametrize("fold", ["close", "write"])
def test_a_small_graph_that_outgrows_the_mapped_one_takes_in_its_rows_instead(tmp_path, small_compactions, monkeypatch, fold):
    """A bulk load after opening a small store: 3,010 rows wait beside a mapped graph of 500. The fold, at
    the close or at a write past the limit of waiting rows, adds the mapped graph's current rows to the
    small graph (481 adds, not 3,010), leaving out its deleted rows and the older vectors of rewritten ones."""
    monkeypatch.setattr(table_index, "WAITING_FLOOR", 3010)
    monkeypatch.setattr(table_index, "WAITING_SHARE", 1 << 30)
    vectors = unit_vectors(500)
    store = reopened_with_a_map(tmp_path, WIDE, nodes(vectors))
    exact = MemoryVectorStore()
    exact.create_workspace("w")
    exact.insert(nodes(vectors), "w")
    work, added = graph_work(monkeypatch), graph_adds(monkeypatch)
    fresh = nodes(unit_vectors(3000, seed=60), start=5000)
    moved = [VectorNode(unique_id=f"n{i}", content="moved", vector=v) for i, v in zip(range(0, 500, 50), unit_vectors(10, seed=61))]
    for store_ in (store, exact):
        for part in range(0, 3000, 500):
            store_.insert(fresh[part : part + 500], "w")
        store_.insert(moved, "w")
        store_.delete([f"n{i}" for i in range(1, 10)], "w")  # 19 stale entries: within the limit
    table = store._state("w").table
    assert work == [] and table.index.viewed and len(table._side) == 3010 and added == [500] * 6 + [10]
    more = nodes(unit_vectors(100, seed=63), start=9000)
    if fold == "write":
        for store_ in (store, exact):
            store_.insert(more, "w")  # 3,110 would wait: this write folds
        assert table.index is not None and not table.index.viewed and table._side is None and len(table.index) == 3010 + 100 + 481
        assert added[7:] == [481 + 100]  # the mapped graph's current rows, and the write's own
    store.close()
    if fold == "close":
        assert added[7:] == [481]
    assert work == []  # the mapped graph was never copied
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert table.index.viewed and table._side is None and len(table.index) == again.count("w") == exact.count("w")
    queries = np.vstack([unit_vectors(40, seed=62), [n.vector for n in fresh[::100]], [n.vector for n in moved]])
    got, want = again.batch_search(queries, "w", top_k=10), exact.batch_search(queries, "w", top_k=10)
    assert float(np.mean([len(set(ids(a)) & set(ids(b))) / 10 for a, b in zip(got, want)])) >= 0.95
    for node in [*fresh[::97], *moved]:
        assert ids(again.search_by_vector(node.vector, "w", top_k=1)) == [node.unique_id]
    if fold == "write":
        assert ids(again.search_by_vector(more[42].vector, "w", top_k=1)) == [more[42].unique_id]
    for i in (1, 5):
        assert f"n{i}" not in ids(again.search_by_vector(vectors[i], "w", top_k=10))
    again.close()
    exact.close()


@requires_usearch
def test_writes_that_waited_wait_again_after_a_reopen_and_compactions_carry_the_mapped_graph_over(tmp_path, small_compactions, monkeypatch):
    monkeypatch.setattr(local_module, "CHECKPOINT_BYTES", 1 << 10)
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_BYTES", 0)  # a graph as big as 10M rows': it stays mapped
    store = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    folder = tmp_path / "w"
    graph = folder / "snap-000001.usearch"
    saved_at, inode = graph.stat().st_mtime_ns, graph.stat().st_ino
    store.insert(nodes(unit_vectors(50, seed=32), start=5000), "w")
    store.delete(["n1"], "w")
    store.close()  # the graph is still the saved map: nothing to save, the writes will wait beside it again
    assert graph.stat().st_mtime_ns == saved_at

    built = graph_work(monkeypatch)
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = reopened._state("w").table
    assert built == [] and table.index.viewed and len(table.index) == 2000 and len(table._unindexed) == 50
    assert ids(reopened.search_by_vector(unit_vectors(50, seed=32)[7], "w", top_k=1)) == ["n5007"]
    assert "n1" not in ids(reopened.search_by_vector(unit_vectors(2000)[1], "w", top_k=10))
    for part in range(20):  # the log outgrows the snapshot: compactions publish new generations
        reopened.insert(nodes(unit_vectors(100, seed=40 + part), start=10_000 + 100 * part), "w")
    generation = reopened._state("w").generation
    assert generation > 1 and built == []  # the graph was never copied into RAM, nor written again:
    carried = folder / f"snap-{generation:06d}.usearch"
    assert carried.stat().st_ino == inode and not graph.exists()  # the new generation's graph is the mapped file
    assert table.index.viewed and len(table._unindexed) == 2050 and len(table._gone) == 1
    reopened.close()

    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert built == [] and table.index.viewed and len(table._unindexed) == 2050 and again.count("w") == 4049
    assert ids(again.search_by_vector(unit_vectors(50, seed=32)[7], "w", top_k=1)) == ["n5007"]
    assert ids(again.search_by_vector(unit_vectors(100, seed=45)[3], "w", top_k=1)) == ["n10503"]
    assert "n1" not in ids(again.search_by_vector(unit_vectors(2000)[1], "w", top_k=10))

    monkeypatch.setattr(table_index, "WAITING_FLOOR", 2100)  # past this many waiting rows, a write takes them in
    monkeypatch.setattr(table_index, "WAITING_SHARE", 1 << 30)
    again.insert(nodes(unit_vectors(100, seed=70), start=20_000), "w")  # 2,150 would wait: this write folds;
    assert built == [] and not table.index.viewed and table._side is None  # the small graph, now the bigger,
    assert not table._unindexed and len(table.index) == 4149  # takes in the 1,999 rows of the mapped one, never copied
    again.close()  # and the close saves it, whole
    last = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = last._state("w").table
    assert table.index.viewed and not table._unindexed and not table._gone and len(table.index) == last.count("w") == 4149
    assert ids(last.search_by_vector(unit_vectors(100, seed=45)[3], "w", top_k=1)) == ["n10503"]
    assert ids(last.search_by_vector(unit_vectors(100, seed=70)[4], "w", top_k=1)) == ["n20004"]
    last.close()


@requires_usearch
@pytest.mark.parametrize("backend", ["memory", "local"])
def test_after_a_failed_index_update_searches_still_find_every_node(tmp_path, monkeypatch, backend):
    """The index is dropped (searches go exact), never rebuilt from the next write's rows alone."""
    store = MemoryVectorStore(index="hnsw", index_params=WIDE) if backend == "memory" else LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    vectors = unit_vectors(1000)
    store.insert(nodes(vectors), "w")
    real_add = ann.HnswIndex.add

    def fail(self, labels, vectors):
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(ann.HnswIndex, "add", fail)
    with pytest.raises(MemoryError):
        store.insert(nodes(unit_vectors(5, seed=33), start=5000), "w")
    monkeypatch.setattr(ann.HnswIndex, "add", real_add)
    store.insert(nodes(unit_vectors(5, seed=34), start=6000), "w")
    for i in range(0, 1000, 97):
        assert ids(store.search_by_vector(vectors[i], "w", top_k=1)) == [f"n{i}"]
    assert ids(store.search_by_vector(unit_vectors(5, seed=34)[3], "w", top_k=1)) == ["n6003"]
    store.close()


@requires_usearch
@pytest.mark.parametrize("compacted", [False, True])
def test_a_small_mapped_graph_takes_in_the_waiting_writes_at_close(tmp_path, small_compactions, monkeypatch, compacted):
    """Below ``FOLD_AT_CLOSE_BYTES`` the close puts what waited into the graph and saves it: the next open has nothing waiting."""
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_WAITING", 20)
    if compacted:
        monkeypatch.setattr(local_module, "MIN_COMPACT_BYTES", 1)  # the close publishes a generation first
    store = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    store.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    store.delete(["n1", "n5003"], "w")
    assert len(store._state("w").table._unindexed) == 29
    store.close()
    built = graph_work(monkeypatch)
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = reopened._state("w").table
    assert built == [] and table.index.viewed and not table._unindexed and not table._gone
    assert len(table.index) == reopened.count("w") == 2000 + 30 - 2
    assert ids(reopened.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    assert "n1" not in ids(reopened.search_by_vector(unit_vectors(2000)[1], "w", top_k=10))
    assert "n5003" not in ids(reopened.search_by_vector(unit_vectors(30, seed=32)[3], "w", top_k=10))
    reopened.close()


@requires_usearch
def test_a_few_waiting_writes_stay_beside_a_small_graph_at_close(tmp_path, small_compactions):
    """Below ``FOLD_AT_CLOSE_WAITING`` the close saves nothing: the graph file stays as it is."""
    store = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    graph = next((tmp_path / "w").glob("snap-*.usearch"))
    inode = graph.stat().st_ino
    store.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    store.close()
    assert graph.stat().st_ino == inode
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    assert len(reopened._state("w").table._unindexed) == 30
    assert ids(reopened.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    reopened.close()


@requires_usearch
def test_a_failed_fold_at_close_leaves_the_saved_graph_and_its_waiting_writes(tmp_path, small_compactions, monkeypatch):
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_WAITING", 20)
    store = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    store.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")

    def no_room(self, labels, vectors):
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(ann.HnswIndex, "add", no_room)
    store.close()  # closing never fails
    monkeypatch.undo()
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = reopened._state("w").table
    assert table.index.viewed and len(table._unindexed) == 30 and len(table.index) == 2000
    assert ids(reopened.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    reopened.close()


@requires_usearch
def test_a_graph_saved_by_another_store_is_not_linked_as_the_one_still_mapped_here(tmp_path, small_compactions, monkeypatch):
    """Store A's close saves a graph under the name store B's mapped graph was opened from; B's next compaction
    writes its own graph out instead of linking that name, so the next open finds a graph that fits its sidecar."""
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_WAITING", 20)
    a = reopened_with_a_map(tmp_path, WIDE, nodes(unit_vectors(2000)))
    b = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    assert b._state("w").table.index.viewed
    a.insert(nodes(unit_vectors(30, seed=32), start=5000), "w")
    a.close()  # takes the 30 into the graph and saves it under the mapped file's name
    b.insert(nodes(unit_vectors(5, seed=33), start=6000), "w")  # b catches up: 35 wait beside its mapped graph
    monkeypatch.setattr(local_module, "MIN_COMPACT_BYTES", 1)  # b's close compacts,
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_WAITING", 10**9)  # carrying its mapped graph over
    b.close()
    built = graph_work(monkeypatch)
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert built == [] and table.index.viewed and len(table._unindexed) == 35  # b's graph, with what waits beside it
    assert ids(again.search_by_vector(unit_vectors(30, seed=32)[7], "w", top_k=1)) == ["n5007"]
    assert ids(again.search_by_vector(unit_vectors(5, seed=33)[2], "w", top_k=1)) == ["n6002"]
    again.close()


@requires_usearch
def test_writes_wait_in_the_small_graph_and_both_graphs_answer_as_exact_search_does(tmp_path, small_compactions, monkeypatch):
    """New rows and stale entries within the share keep waiting: no write copies the mapped graph, and the
    two graphs together answer as exact search does. The close saves them beside it, as for a big graph."""
    monkeypatch.setattr(table_index, "WAITING_FLOOR", 20)
    monkeypatch.setattr(table_index, "WAITING_SHARE", 2)  # 1,000 beside 2,000
    monkeypatch.setattr(local_module, "FOLD_AT_CLOSE_BYTES", 0)  # as for a big graph
    data = nodes(wide_vectors(2000))
    store = reopened_with_a_map(tmp_path, WIDE, data)
    exact = MemoryVectorStore()
    exact.create_workspace("w")
    exact.insert(data, "w")
    work = graph_work(monkeypatch)
    fresh = nodes(wide_vectors(600, seed=50), start=10_000)
    moved = [VectorNode(unique_id=f"n{i}", content="moved", vector=v) for i, v in zip(range(0, 2000, 40), wide_vectors(50, seed=51))]
    # moved a little: the big graph still finds their old vectors near a query of the new ones
    near = [n.vector + 0.02 * np.random.default_rng(i).standard_normal(len(n.vector)) for i, n in enumerate(data[2:2000:100])]
    nudged = [VectorNode(unique_id=n.unique_id, content="nudged", vector=v / np.linalg.norm(v)) for n, v in zip(data[2:2000:100], near)]
    for store_ in (store, exact):
        for part in range(0, 600, 100):
            store_.insert(fresh[part : part + 100], "w")
        store_.insert(moved + nudged, "w")
        store_.delete([f"n{i}" for i in range(1, 2000, 100)], "w")
    table = store._state("w").table
    assert work == [] and table.index.viewed and len(table._side) == 670 and len(table._gone) == 20 + 70 and table._replaced == 0
    queries = np.vstack([wide_vectors(30, seed=52), *[[n.vector for n in part] for part in (fresh[::40], moved[::10], nudged)]])
    got, want = store.batch_search(queries, "w", top_k=10), exact.batch_search(queries, "w", top_k=10)
    assert float(np.mean([len(set(ids(a)) & set(ids(b))) / 10 for a, b in zip(got, want)])) >= 0.95
    for hits in got:  # each node once (a nudged one is in both graphs), never a deleted one
        assert len(set(ids(hits))) == 10 and not {f"n{i}" for i in range(1, 2000, 100)} & set(ids(hits))
    for node in [*fresh[::37], *moved[::7], *nudged]:
        assert ids(store.search_by_vector(node.vector, "w", top_k=1)) == [node.unique_id]
    store.close()
    assert work == []
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert table.index.viewed and len(table._side) == 670 and len(table._gone) == 20 + 70 and again.count("w") == exact.count("w")
    for node in [*fresh[::37], *moved[::7], *nudged]:
        assert ids(again.search_by_vector(node.vector, "w", top_k=1)) == [node.unique_id]
    again.close()
    exact.close()


@requires_usearch
def test_two_stores_with_the_graph_mapped_follow_each_others_writes_into_their_small_graphs(tmp_path, small_compactions, monkeypatch):
    """Store B reads A's frames into its own small graph (inserts, rewrites, deletes), and A reads B's; both
    closes save, and the next open finds every node without building a graph."""
    monkeypatch.setattr(local_module, "CHECKPOINT_BYTES", 1 << 10)
    vectors = unit_vectors(2000)
    a = reopened_with_a_map(tmp_path, WIDE, nodes(vectors))
    b = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    fresh, moved = unit_vectors(30, seed=32), unit_vectors(5, seed=33)
    a.insert(nodes(fresh, start=5000), "w")
    a.insert([VectorNode(unique_id=f"n{10 + i}", content="moved", vector=v) for i, v in enumerate(moved)], "w")
    a.delete(["n1", "n5003"], "w")
    assert ids(b.search_by_vector(fresh[7], "w", top_k=1)) == ["n5007"]  # b caught up: the search reads a's frames first
    table = b._state("w").table
    assert table.index.viewed and len(table._side) == 29 + 5 and table._replaced == 0 and len(table._gone) == 1 + 5
    assert ids(b.search_by_vector(moved[2], "w", top_k=1)) == ["n12"]
    assert "n1" not in ids(b.search_by_vector(vectors[1], "w", top_k=10)) and "n5003" not in ids(b.search_by_vector(fresh[3], "w", top_k=10))
    b.insert(nodes(unit_vectors(10, seed=34), start=6000), "w")
    assert ids(a.search_by_vector(unit_vectors(10, seed=34)[4], "w", top_k=1)) == ["n6004"]
    assert len(a._state("w").table._side) == 29 + 5 + 10
    a.close()
    b.close()
    work = graph_work(monkeypatch)
    again = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    table = again._state("w").table
    assert work == [] and table.index.viewed and len(table._side) == 44 and again.count("w") == 2000 + 30 - 2 + 10
    for query, expected in [(fresh[7], "n5007"), (moved[2], "n12"), (unit_vectors(10, seed=34)[4], "n6004"), (vectors[700], "n700")]:
        assert ids(again.search_by_vector(query, "w", top_k=1)) == [expected]
    again.close()
