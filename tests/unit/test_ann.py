"""The optional approximate index (index="hnsw") of the memory and local backends."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import vecbook
from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode
from vecbook.errors import MissingDependencyError, ValidationError
from vecbook.stores.engine import ann, table_index
from vecbook.stores import local as local_module  # the backend's tunables

DIMS = 32
WIDE = {"ef_search": 200, "exact_below": 0}  # use the index even on these small sets, wide enough to be sure of recall


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, DIMS)).astype(np.float32)
    v = centers[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def nodes(vectors: np.ndarray, start: int = 0) -> list[VectorNode]:
    return [
        VectorNode(unique_id=f"n{start + i}", content=f"text {start + i}", metadata={"group": (start + i) % 10}, vector=v)
        for i, v in enumerate(vectors)
    ]


def ids(hits) -> list[str]:
    return [h.unique_id for h in hits]


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "usearch", None)
    with pytest.raises(MissingDependencyError, match=r"vecbook\[ann\]"):
        MemoryVectorStore(index="hnsw", index_params=WIDE)


def test_bad_index_arguments_are_refused():
    with pytest.raises(ValidationError):
        MemoryVectorStore(index="ivf")
    with pytest.raises(ValidationError):
        MemoryVectorStore(index_params={"M": 8})
    pytest.importorskip("usearch")
    with pytest.raises(ValidationError):
        MemoryVectorStore(index="hnsw", index_params={"M": 0})
    with pytest.raises(ValidationError):
        MemoryVectorStore(index="hnsw", index_params={"efSearch": 10})


def graph_work(monkeypatch) -> list[tuple[str, int]]:
    """What the tables do to their big graphs from now on: ("build", rows) for a graph built from the
    table's rows, ("copy", rows) for a mapped graph copied into RAM. Adds to the small graph of the
    rows waiting beside a mapped one are not listed."""
    work: list[tuple[str, int]] = []
    real_build, real_writable = table_index.TableIndex._build_index, ann.HnswIndex._writable

    def build(self, live):
        work.append(("build", len(live)))
        return real_build(self, live)

    def writable(self):
        if self.viewed:
            work.append(("copy", len(self)))
        return real_writable(self)

    monkeypatch.setattr(table_index.TableIndex, "_build_index", build)
    monkeypatch.setattr(ann.HnswIndex, "_writable", writable)
    return work


requires_usearch = pytest.mark.skipif(importlib.util.find_spec("usearch") is None, reason="needs the ann extra (usearch)")


def indexed_and_exact(backend: str, tmp_path, params: dict, data: list) -> tuple:
    """(a store of ``backend`` with an index of ``params``, the same store without one), both holding ``data`` in "w"."""
    if backend == "memory":
        indexed, exact = MemoryVectorStore(index="hnsw", index_params=params), MemoryVectorStore()
    else:
        indexed = LocalVectorStore(store_dir=tmp_path / "a", index="hnsw", index_params=params)
        exact = LocalVectorStore(store_dir=tmp_path / "b")
    for store in (indexed, exact):
        store.create_workspace("w")
        store.insert(data, "w")
    return indexed, exact


@pytest.fixture(params=["memory", "local"])
def pair(request, tmp_path):
    """(store with an index, the same store without one), both holding the same 3,000 nodes."""
    indexed, exact = indexed_and_exact(request.param, tmp_path, WIDE, nodes(unit_vectors(3000)))
    yield indexed, exact
    indexed.close()
    exact.close()


def recall(indexed, exact, queries: np.ndarray, k: int = 10) -> float:
    got = indexed.batch_search(queries, "w", top_k=k)
    want = exact.batch_search(queries, "w", top_k=k)
    return float(np.mean([len(set(ids(a)) & set(ids(b))) / k for a, b in zip(got, want)]))


@requires_usearch
def test_unfiltered_search_uses_the_index_and_agrees_with_exact(pair):
    indexed, exact = pair
    assert recall(indexed, exact, unit_vectors(50, seed=1)) >= 0.95
    hits = indexed.search_by_vector(unit_vectors(1, seed=2)[0], "w", top_k=5)
    scores = [h.metadata["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)  # exact scores, recomputed and ordered


@requires_usearch
def test_filtered_search_stays_exact(pair):
    indexed, exact = pair
    for q in unit_vectors(10, seed=3):
        for flt in ({"group": 3}, {"group": {"gte": 1}}):
            assert ids(indexed.search_by_vector(q, "w", top_k=7, filter_dict=flt)) == ids(exact.search_by_vector(q, "w", top_k=7, filter_dict=flt))


@requires_usearch
def test_upsert_and_delete_update_the_index(pair):
    indexed, exact = pair
    target = unit_vectors(1, seed=4)[0]
    for store in pair:
        store.insert(VectorNode(unique_id="n5", content="moved", vector=target), "w")  # replace a vector
        store.insert(nodes(unit_vectors(200, seed=5), start=10_000), "w")  # new nodes
    assert ids(indexed.search_by_vector(target, "w", top_k=1)) == ["n5"]
    assert ids(indexed.search_by_vector(unit_vectors(200, seed=5)[17], "w", top_k=1)) == ["n10017"]
    gone = [f"n{i}" for i in range(0, 3000, 2)] + ["n5"]  # enough dead rows to force compaction
    for store in pair:
        store.delete(gone, "w")
    assert indexed.count("w") == exact.count("w") == 1699
    for hits in indexed.batch_search(unit_vectors(30, seed=6), "w", top_k=10):
        assert not set(ids(hits)) & set(gone) and len(hits) == 10
    assert recall(indexed, exact, unit_vectors(50, seed=7)) >= 0.95
    assert ids(indexed.search_by_vector(unit_vectors(200, seed=5)[17], "w", top_k=1)) == ["n10017"]
    table = indexed._state("w").table
    assert (np.diff(table._labels[: table.n_rows]) > 0).all()  # labels increase with the rows: found by binary search


@requires_usearch
def test_top_k_beyond_the_count_returns_everything(pair):
    indexed, _ = pair
    indexed.create_workspace("tiny")
    indexed.insert(nodes(unit_vectors(5)), "tiny")
    indexed.delete(["n0"], "tiny")
    assert sorted(ids(indexed.search_by_vector(unit_vectors(1)[0], "tiny", top_k=50))) == ["n1", "n2", "n3", "n4"]


@requires_usearch
def test_euclidean_and_dot_indexes(tmp_path):
    for distance in ("euclidean", "dot"):
        indexed, exact = MemoryVectorStore(index="hnsw", index_params=WIDE, distance=distance), MemoryVectorStore(distance=distance)
        for store in (indexed, exact):
            store.create_workspace("w")
            store.insert(nodes(unit_vectors(1500) * 3), "w")
        assert recall(indexed, exact, unit_vectors(30, seed=8) * 2) >= 0.95


# ---- persistence of the local backend ---------------------------------------------------


@pytest.fixture
def small_compactions(monkeypatch):
    monkeypatch.setattr(local_module, "MIN_COMPACT_BYTES", 64 << 10)


def snapshot_files(folder, suffix: str) -> list:
    return sorted(p.name for p in folder.glob(f"snap-*{suffix}"))


@requires_usearch
def test_local_saves_the_index_beside_each_snapshot_and_loads_it(tmp_path, small_compactions, monkeypatch):
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    store.insert(nodes(unit_vectors(2000)), "w")  # one frame past the threshold: a snapshot
    store.insert(nodes(unit_vectors(10, seed=9), start=5000), "w")  # stays in the log
    folder = tmp_path / "w"
    assert snapshot_files(folder, ".usearch") == ["snap-000001.usearch"]
    assert snapshot_files(folder, ".ann.json") == ["snap-000001.ann.json"]
    expected = [ids(h) for h in store.batch_search(unit_vectors(20, seed=10), "w", top_k=5)]
    store.close()

    built = graph_work(monkeypatch)
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    assert [ids(h) for h in reopened.batch_search(unit_vectors(20, seed=10), "w", top_k=5)] == expected
    assert built == []  # the saved graph was loaded as a map; the log's 10 nodes wait beside it
    assert reopened._state("w").table.index.viewed
    assert ids(reopened.search_by_vector(unit_vectors(10, seed=9)[3], "w", top_k=1)) == ["n5003"]
    reopened.close()


@requires_usearch
@pytest.mark.parametrize("damage", ["corrupt", "truncate", "delete", "stale"])
def test_a_damaged_or_stale_index_is_rebuilt(tmp_path, small_compactions, damage):
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    vectors, query = unit_vectors(2000), unit_vectors(1, seed=11)[0]
    store.insert(nodes(vectors), "w")
    exact = {f"n{i}" for i in np.argsort(-(vectors @ query))[:10]}
    assert len(exact & set(ids(store.search_by_vector(query, "w", top_k=10)))) >= 9
    store.close()
    graph = tmp_path / "w" / "snap-000001.usearch"
    if damage == "corrupt":
        raw = bytearray(graph.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        graph.write_bytes(bytes(raw))
    elif damage == "truncate":
        graph.write_bytes(graph.read_bytes()[:1000])
    elif damage == "delete":
        graph.unlink()
    else:
        sidecar = tmp_path / "w" / "snap-000001.ann.json"
        sidecar.write_text(sidecar.read_text().replace('"generation": 1', '"generation": 7'))
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    # a rebuilt graph (built on several threads, so not the same graph) finds what exact search finds
    assert len(exact & set(ids(reopened.search_by_vector(query, "w", top_k=10)))) >= 9
    assert reopened._state("w").table.index is not None
    reopened.close()


@requires_usearch
def test_old_generations_index_files_are_removed(tmp_path, small_compactions):
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    for part in range(3):
        store.insert(nodes(unit_vectors(2000, seed=part), start=part * 2000), "w")
    folder = tmp_path / "w"
    assert len(snapshot_files(folder, ".usearch")) == 1
    assert len(snapshot_files(folder, ".labels.npy")) == 1
    store.close()


@requires_usearch
def test_another_process_writes_reach_the_index(tmp_path):
    writer = LocalVectorStore(store_dir=tmp_path)  # no index: the file format is the same
    reader = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    writer.create_workspace("w")
    writer.insert(nodes(unit_vectors(500)), "w")
    assert reader.count("w") == 500
    writer.insert(nodes(unit_vectors(5, seed=12), start=900), "w")
    writer.delete(["n901"], "w")
    assert ids(reader.search_by_vector(unit_vectors(5, seed=12)[2], "w", top_k=1)) == ["n902"]
    assert "n901" not in ids(reader.search_by_vector(unit_vectors(5, seed=12)[1], "w", top_k=20))
    writer.close()
    reader.close()


@requires_usearch
def test_repr_names_the_index(tmp_path):
    assert "index='hnsw'" in repr(MemoryVectorStore(index="hnsw"))
    assert "index=" not in repr(LocalVectorStore(store_dir=tmp_path))
    assert isinstance(vecbook.create_vector_store("memory", index="hnsw"), MemoryVectorStore)


@requires_usearch
def test_close_saves_an_index_that_ran_ahead_of_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.setattr(local_module, "CHECKPOINT_BYTES", 64 << 10)
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    store.insert(nodes(unit_vectors(3000)), "w")  # < 8 MB: no snapshot, all in the log
    assert not list((tmp_path / "w").glob("*.usearch"))
    store.close()
    assert snapshot_files(tmp_path / "w", ".usearch") == ["snap-000000.usearch"]

    built = graph_work(monkeypatch)
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    reopened.insert(nodes(unit_vectors(3, seed=13), start=7000), "w")
    assert built == [] and reopened._state("w").table.index.viewed  # the graph came from disk; the write waits beside it
    assert ids(reopened.search_by_vector(unit_vectors(3, seed=13)[1], "w", top_k=1)) == ["n7001"]
    reopened.close()  # only 3 nodes past the saved index: not worth saving again
    meta = (tmp_path / "w" / "snap-000000.ann.json").read_text()
    assert '"log_offset"' in meta


@requires_usearch
def test_small_workspaces_are_searched_exactly(monkeypatch):
    store = MemoryVectorStore(index="hnsw", index_params={"exact_below": 5000})
    store.create_workspace("w")
    store.insert(nodes(unit_vectors(1000)), "w")
    monkeypatch.setattr(ann.HnswIndex, "search", lambda *a: pytest.fail("the index was used"))
    exact = MemoryVectorStore()
    exact.create_workspace("w")
    exact.insert(nodes(unit_vectors(1000)), "w")
    q = unit_vectors(1, seed=14)[0]
    assert ids(store.search_by_vector(q, "w", top_k=10)) == ids(exact.search_by_vector(q, "w", top_k=10))


# ---- quantized graphs (int8 / binary) with exact re-scoring, and graphs opened by mmap ------------

WIDE_DIMS = 128


def wide_vectors(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in many small clusters (like embeddings of related texts), with room for sign bits."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((400, WIDE_DIMS)).astype(np.float32)
    v = centers[rng.integers(0, 400, n)] + 0.5 * rng.standard_normal((n, WIDE_DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_bad_quantization_is_refused():
    pytest.importorskip("usearch")
    with pytest.raises(ValidationError, match="quantization"):
        MemoryVectorStore(index="hnsw", index_params={"quantization": "int4"})
    with pytest.raises(ValidationError, match="cosine"):
        MemoryVectorStore(index="hnsw", index_params={"quantization": "int8"}, distance="dot")
    with pytest.raises(ValidationError):
        MemoryVectorStore(index="hnsw", index_params={"quantization": "binary", "rerank": 0.5})


@requires_usearch
@pytest.mark.parametrize("quantization", ["int8", "binary"])
@pytest.mark.parametrize("backend", ["memory", "local"])
def test_quantized_index_returns_exact_scores_and_recall(tmp_path, quantization, backend):
    # one build thread: the same graph every run (built on several threads, binary's recall here
    # ranged 0.9475-0.96 between runs, and the lowest failed the bound once in ~90 runs)
    params = {"quantization": quantization, "exact_below": 0, "threads": 1}
    data = nodes(wide_vectors(4000))
    indexed, exact = indexed_and_exact(backend, tmp_path, params, data)
    queries = wide_vectors(40, seed=1)
    got, want = indexed.batch_search(queries, "w", top_k=10), exact.batch_search(queries, "w", top_k=10)
    assert float(np.mean([len(set(ids(a)) & set(ids(b))) / 10 for a, b in zip(got, want)])) >= 0.95
    truth = {n.unique_id: n.vector for n in data}
    for q, hits in zip(queries, got):
        scores = [h.metadata["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
        exact_float32 = [float(truth[h.unique_id] @ q) for h in hits]  # unit vectors: cosine = dot
        assert np.allclose(scores, exact_float32, rtol=0, atol=1e-5)
    indexed.close()
    exact.close()


@requires_usearch
@pytest.mark.parametrize("quantization", [None, "int8"])
def test_local_opens_the_saved_graph_as_a_map_and_writes_wait_beside_it(tmp_path, small_compactions, quantization):
    params = {**WIDE, "quantization": quantization}
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    store.create_workspace("w")
    store.insert(nodes(unit_vectors(2000)), "w")
    queries = unit_vectors(20, seed=15)
    expected = [ids(h) for h in store.batch_search(queries, "w", top_k=5)]
    store.close()
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=params)
    assert [ids(h) for h in reopened.batch_search(queries, "w", top_k=5)] == expected
    index = reopened._state("w").table.index
    assert index.viewed and index.nbytes == 0  # a read-only map of the file, nothing copied
    reopened.insert(nodes(unit_vectors(3, seed=16), start=9000), "w")
    reopened.delete(["n7"], "w")
    assert index.viewed and index.nbytes == 0  # nothing copied: the writes wait beside the map
    assert ids(reopened.search_by_vector(unit_vectors(3, seed=16)[2], "w", top_k=1)) == ["n9002"]
    assert "n7" not in ids(reopened.search_by_vector(unit_vectors(2000)[7], "w", top_k=10))
    reopened.close()


@requires_usearch
def test_a_large_graph_is_verified_in_the_background(tmp_path, small_compactions, monkeypatch):
    from vecbook.stores.engine import ann_files

    monkeypatch.setattr(ann_files, "VERIFY_INLINE_BYTES", 0)  # every graph counts as large
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    vectors = unit_vectors(2000)
    store.insert(nodes(vectors), "w")
    q = unit_vectors(1, seed=17)[0]
    expected = ids(store.search_by_vector(q, "w", top_k=10))  # the saved graph's answer
    exact = [f"n{i}" for i in np.argsort(-(vectors @ q), kind="stable")[:10]]
    store.close()

    intact = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    index = intact._state("w").table.index
    index.verifier.join()
    assert not index.damaged and ids(intact.search_by_vector(q, "w", top_k=10)) == expected
    intact.close()

    graph = tmp_path / "w" / "snap-000001.usearch"
    raw = bytearray(graph.read_bytes())
    raw[200] ^= 0xFF  # inside the stored vectors: a wrong code, not a broken graph
    graph.write_bytes(bytes(raw))
    damaged = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    index = damaged._state("w").table.index
    index.verifier.join()
    assert index.damaged  # never searched again: searches go exact
    assert ids(damaged.search_by_vector(q, "w", top_k=10)) == exact
    assert not (tmp_path / "w" / "snap-000001.ann.json").exists()  # the next open rebuilds it
    damaged.close()
    rebuilt = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    # a new graph (built on several threads, so not the same graph) finds what exact search finds
    assert len(set(ids(rebuilt.search_by_vector(q, "w", top_k=10))) & set(exact)) >= 9
    assert not rebuilt._state("w").table.index.viewed
    rebuilt.close()


@requires_usearch
def test_damaged_labels_of_a_large_graph_are_found_in_the_background(tmp_path, small_compactions, monkeypatch):
    from vecbook.stores.engine import ann_files

    monkeypatch.setattr(ann_files, "VERIFY_INLINE_BYTES", 0)  # every graph counts as large
    vectors = unit_vectors(2000)
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    store.insert(nodes(vectors), "w")
    store.close()
    labels = tmp_path / "w" / "snap-000001.labels.npy"
    raw = bytearray(labels.read_bytes())
    raw[-8] ^= 1  # the last row's label 1999 becomes 1998: in range, but the wrong row
    labels.write_bytes(bytes(raw))
    reopened = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    index = reopened._state("w").table.index
    index.verifier.join()
    assert index.damaged  # never searched again
    q = vectors[1999]
    assert ids(reopened.search_by_vector(q, "w", top_k=3)) == [f"n{i}" for i in np.argsort(-(vectors @ q), kind="stable")[:3]]
    reopened.close()


@requires_usearch
@pytest.mark.parametrize("change, saved_text, asked_text, sidecar_text", [
    ({"index_params": {**WIDE, "quantization": "int8"}}, "quantization=None", "quantization='int8'", '"quantization": "int8"'),
    ({"index_params": WIDE, "distance": "euclidean"}, "distance='cosine'", "distance='euclidean'", '"distance": "euclidean"'),
])
def test_an_index_saved_with_other_settings_is_rebuilt_once_and_says_so(tmp_path, small_compactions, monkeypatch, caplog,
                                                                          change, saved_text, asked_text, sidecar_text):
    store = LocalVectorStore(store_dir=tmp_path, index="hnsw", index_params=WIDE)
    store.create_workspace("w")
    vectors, query = unit_vectors(2000), unit_vectors(1, seed=11)[0]
    store.insert(nodes(vectors), "w")
    store.close()
    exact = {f"n{i}" for i in np.argsort(-(vectors @ query))[:10]}  # unit vectors: the same order by cosine and euclidean

    with caplog.at_level("WARNING", logger="vecbook.ann"):
        changed = LocalVectorStore(store_dir=tmp_path, index="hnsw", **change)
        assert len(exact & set(ids(changed.search_by_vector(query, "w", top_k=10)))) >= 9
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "vecbook.ann"]
    assert saved_text in warning and asked_text in warning and "rebuilding" in warning
    changed.close()
    assert sidecar_text in (tmp_path / "w" / "snap-000001.ann.json").read_text()  # replaced by close(), small as it is

    caplog.clear()
    built = graph_work(monkeypatch)
    with caplog.at_level("WARNING", logger="vecbook.ann"):
        again = LocalVectorStore(store_dir=tmp_path, index="hnsw", **change)
        assert len(exact & set(ids(again.search_by_vector(query, "w", top_k=10)))) >= 9
    assert built == [] and again._state("w").table.index.viewed and not caplog.records  # opened as saved, no rebuild
    again.close()


@requires_usearch
def test_an_int8_graph_codes_vectors_with_huge_components_without_overflow():
    """Their squares overflow float32: the codes are computed from float64 norms, so the node is still found
    through the graph, and no RuntimeWarning reaches the caller."""
    import warnings

    vectors = unit_vectors(500)
    huge = vectors[7] * np.float32(3e37)
    store = MemoryVectorStore(index="hnsw", index_params={**WIDE, "quantization": "int8"})
    store.create_workspace("w")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.insert(nodes(vectors), "w")
        store.insert(VectorNode(unique_id="huge", vector=huge), "w")
        store.delete(["n7"], "w")  # the only other node in that direction
        assert store._state("w").table.uses_index(1)
        assert ids(store.search_by_vector(vectors[7], "w", top_k=1)) == ["huge"]
    store.close()
