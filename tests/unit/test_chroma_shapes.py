"""Chroma format 3: which paths a node has, recorded as one shape id (vecbook.stores.chroma.shapes)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecbook import MemoryVectorStore, VectorNode

chromadb = pytest.importorskip("chromadb")

from vecbook.stores.chroma import store as chroma_module  # noqa: E402
from vecbook.stores.chroma import ChromaVectorStore, collection_name  # noqa: E402
from vecbook.stores.chroma.filters import compile_layout, encode_metadata, metadata_layout, rebuild  # noqa: E402
from vecbook.stores.chroma.shapes import MARKED, read_shape, shape_id, side_name  # noqa: E402

from tests.unit.chroma_helpers import vec  # noqa: E402

METADATA = [
    {"a": 1, "b": {"c": "x"}},
    {"a": 2},
    {"b": {"c": "y"}, "t": ["p", "q"]},
    {},
    {"a": None, "d": "2024-01"},
    {"d": "2025-06", "a": 3},
]
FILTERS = [
    {"a": {"exists": True}},
    {"a": {"exists": False}},
    {"b.c": {"exists": True}},
    {"b": {"exists": False}, "a": {"exists": False}},
    {"$not": {"t": {"exists": True}}},
    {"$or": [{"d": {"exists": True}}, {"a": 2}]},
    {"d": {"gte": "2024-06"}},
]


def items(metadata=METADATA) -> list[VectorNode]:
    return [VectorNode(unique_id=f"n{i}", content=f"c{i}", metadata=md, vector=vec(i)) for i, md in enumerate(metadata)]


def raw_collections(store: ChromaVectorStore, ws: str = "w"):
    client = chromadb.PersistentClient(path=store.store_dir)
    name = collection_name("vecbook_", ws)
    return client.get_collection(name, embedding_function=None), client.get_collection(side_name(name), embedding_function=None)


def assert_filters_match_memory(store: ChromaVectorStore, nodes: list[VectorNode]) -> None:
    memory = MemoryVectorStore()
    memory.create_workspace("w")
    memory.insert(nodes, "w")
    for spec in FILTERS:
        expected = sorted(n.unique_id for n in memory.iter_workspace_nodes("w", filter_dict=spec))
        assert sorted(n.unique_id for n in store.iter_workspace_nodes("w", filter_dict=spec)) == expected, spec
        hits = store.search_by_vector(vec(0), "w", top_k=len(nodes), filter_dict=spec)
        assert sorted(h.unique_id for h in hits) == expected, spec


@pytest.fixture
def store(tmp_path):
    with ChromaVectorStore(store_dir=str(tmp_path / "chroma")) as s:
        s.create_workspace("w")
        yield s


def test_a_node_stores_one_shape_id_and_each_shape_is_registered_once(store):
    store.insert(items(), "w")
    store.insert(items()[:2], "w")  # shapes already registered
    main, side = raw_collections(store)
    found = main.get(include=["metadatas"])
    stored = dict(zip(found["ids"], found["metadatas"]))
    assert not any(key.startswith("%p.") for md in stored.values() for key in md)
    assert stored["n0"] == {"a": 1.0, "b.c": "x", "%s": stored["n0"]["%s"], "%x": stored["n0"]["%x"]}  # no %j: the layout rebuilds it
    assert "%j" in stored["n2"]  # a list: its order and repeats are only in %j
    registry = side.get(include=["documents"])
    shapes = dict(zip(registry["ids"], map(read_shape, registry["documents"])))
    assert len(shapes) == 6 and all(sid == shape_id(doc) for sid, doc in zip(registry["ids"], registry["documents"]))
    assert shapes[stored["n0"]["%s"]] == (frozenset({"a", "b", "b.c"}), [["a", "i"], ["b", [["c", "s"]]]])
    assert shapes[stored["n2"]["%s"]][0] == frozenset({"b", "b.c", "t"})
    assert [n.metadata for n in store.get([f"n{i}" for i in range(6)], "w")] == METADATA
    assert_filters_match_memory(store, items())


def test_a_store_that_did_not_write_a_shape_learns_its_layout(store, tmp_path):
    store.insert(items(), "w")
    with ChromaVectorStore(store_dir=store.store_dir) as other:  # no layouts cached
        got = other.get([f"n{i}" for i in range(6)], "w")
        assert [json.dumps(n.metadata) for n in got] == [json.dumps(md) for md in METADATA]  # types and key order too


metadata_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.dictionaries(st.text(min_size=0, max_size=4), inner, max_size=4) | st.lists(inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400)
@given(st.dictionaries(st.text(max_size=4), metadata_values, max_size=5))
def test_a_layout_rebuilds_exactly_what_it_describes(metadata):
    layout = metadata_layout(metadata)
    if layout is not None:
        assert json.dumps(rebuild(encode_metadata(metadata), compile_layout(layout))) == json.dumps(metadata)


def test_the_registry_is_no_workspace_and_goes_with_its_workspace(store):
    store.insert(items(), "w")
    assert store.list_workspaces() == ["w"]
    store.delete_workspace("w")
    names = [c.name for c in chromadb.PersistentClient(path=store.store_dir).list_collections()]
    assert names == []
    store.create_workspace("w")
    store.insert(items(), "w")  # registers again in a new side collection
    assert_filters_match_memory(store, items())


def test_past_the_cap_nodes_keep_markers(store, monkeypatch):
    monkeypatch.setattr(chroma_module, "SHAPE_CAP", 2)
    store.insert(items(), "w")
    main, side = raw_collections(store)
    assert len(side.get()["ids"]) == 2
    stored = main.get(include=["metadatas"])["metadatas"]
    marked = [md for md in stored if md["%s"] == MARKED]
    assert len(marked) == 4  # six nodes of six shapes, two registered
    assert all(any(key.startswith("%p.") for key in md) or md["%j"] == "{}" for md in marked)
    assert_filters_match_memory(store, items())


def test_shapes_the_reader_does_not_know_are_post_filtered(store):
    store.insert(items(), "w")
    main, side = raw_collections(store)
    side.delete(ids=side.get()["ids"])  # as if registered after the reader looked
    assert_filters_match_memory(store, items())
    # and records another tool wrote, with plain metadata and no shape at all
    main.add(ids=["x"], embeddings=[vec(9)], metadatas=[{"a": 7}], documents=["foreign"])
    foreign = items() + [VectorNode(unique_id="x", content="foreign", metadata={"a": 7}, vector=vec(9))]
    assert_filters_match_memory(store, foreign)


def test_a_node_that_changes_shape_loses_its_old_keys(store):
    store.insert(items(), "w")
    store.insert([VectorNode(unique_id="n0", content="c0", metadata={"z": True}, vector=vec(0))], "w")
    main, _ = raw_collections(store)
    assert set(main.get(ids=["n0"], include=["metadatas"])["metadatas"][0]) == {"z", "%s", "%x"}
    changed = [VectorNode(unique_id="n0", content="c0", metadata={"z": True}, vector=vec(0))] + items()[1:]
    assert_filters_match_memory(store, changed)


def test_a_format_2_workspace_keeps_its_markers(tmp_path, monkeypatch):
    with ChromaVectorStore(store_dir=str(tmp_path)) as store:
        monkeypatch.setattr(chroma_module, "FORMAT", 2)  # written as vecbook 2026-11 (format 2) wrote it
        store.create_workspace("w")
        monkeypatch.undo()
        store.insert(items(), "w")
        raw = chromadb.PersistentClient(path=store.store_dir)
        assert [c.name for c in raw.list_collections()] == [collection_name("vecbook_", "w")]
        stored = raw.get_collection(collection_name("vecbook_", "w"), embedding_function=None).get(ids=["n0"], include=["metadatas"])
        assert {"%p.a", "%p.b", "%p.b.c"} <= stored["metadatas"][0].keys() and "%s" not in stored["metadatas"][0]
        assert_filters_match_memory(store, items())
        store.copy_workspace("w", "w3")
        assert "%s" in raw.get_collection(collection_name("vecbook_", "w3"), embedding_function=None).get(ids=["n0"], include=["metadatas"])["metadatas"][0]


def test_two_stores_on_a_server_read_each_others_shapes(chroma_server, chroma_test_prefix):
    # Each store caches the shapes it registered; a shape another client registered is learnt
    # when one of its nodes is read, and filters by presence see it at once.
    host, port = chroma_server
    with ChromaVectorStore(host=host, port=port, collection_prefix=chroma_test_prefix) as a, ChromaVectorStore(
        host=host, port=port, collection_prefix=chroma_test_prefix
    ) as b:
        a.create_workspace("w")
        a.insert(items()[:3], "w")
        b.insert(items()[3:], "w")  # shapes a has never seen
        assert [json.dumps(n.metadata) for n in a.get([f"n{i}" for i in range(6)], "w")] == [json.dumps(md) for md in METADATA]
        assert_filters_match_memory(a, items())
        assert_filters_match_memory(b, items())
