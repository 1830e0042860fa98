"""Workspaces of earlier formats (vecbook.stores.chroma.legacy): read exactly, written, filtered
(by post-filter) like any other, and moved to format 4 by copy_workspace. Format 1 (cosine
space, a copy of every vector): test_chroma_layout.py."""

from __future__ import annotations

import json

import pytest

from vecbook import MemoryVectorStore, VectorNode

chromadb = pytest.importorskip("chromadb")

from vecbook.stores.chroma import ChromaVectorStore, collection_name  # noqa: E402
from vecbook.stores.chroma.layout import FORMAT  # noqa: E402
from vecbook.stores.chroma.legacy import side_name  # noqa: E402

from tests.unit.chroma_helpers import old_workspace, vec  # noqa: E402

METADATA = [
    {"a": 1, "b": {"c": "x"}},
    {"a": 2, "f": 0.5},
    {"b": {"c": "y"}, "t": ["p", "q"]},
    {},
    {"a": None, "d": "2024-01", "big": 2**53 + 1},
    {"d": "2025-06", "a": 3, "file.name": "z"},
]
FILTERS = [
    {"a": {"exists": True}},
    {"a": {"exists": False}},
    {"b.c": {"exists": True}},
    {"b": {"exists": False}, "a": {"exists": False}},
    {"$not": {"t": {"exists": True}}},
    {"$or": [{"d": {"exists": True}}, {"a": 2}]},
    {"d": {"gte": "2024-06"}},
    {"a": {"gte": 2}},
    {"t": "q"},
    {"big": 2**53 + 1},
    {"file\\.name": "z"},
]


def items(metadata=METADATA) -> list[VectorNode]:
    return [VectorNode(unique_id=f"n{i}", content=f"c{i}", metadata=md, vector=vec(i)) for i, md in enumerate(metadata)]


def assert_filters_match_memory(store: ChromaVectorStore, ws: str, nodes: list[VectorNode]) -> None:
    memory = MemoryVectorStore()
    memory.create_workspace("w")
    memory.insert(nodes, "w")
    for spec in FILTERS:
        expected = sorted(n.unique_id for n in memory.iter_workspace_nodes("w", filter_dict=spec))
        assert sorted(n.unique_id for n in store.iter_workspace_nodes(ws, filter_dict=spec)) == expected, spec
        hits = store.search_by_vector(vec(0), ws, top_k=len(nodes), filter_dict=spec)
        assert sorted(h.unique_id for h in hits) == expected, spec


@pytest.mark.parametrize("version", [2, 3])
def test_an_old_workspace_is_read_written_filtered_and_copied_into_the_current_format(tmp_path, version):
    old_workspace(tmp_path, "w", items(), version)
    raw = chromadb.PersistentClient(path=str(tmp_path))
    if version == 3:  # nodes whose shape rebuilds them have no %j
        assert "%j" not in raw.get_collection(collection_name("vecbook_", "w")).get(ids=["n0"], include=["metadatas"])["metadatas"][0]
    with ChromaVectorStore(store_dir=str(tmp_path)) as store:
        got = store.get([f"n{i}" for i in range(len(METADATA))], "w")
        assert [json.dumps(n.metadata) for n in got] == [json.dumps(md) for md in METADATA]  # types and key order too
        assert all(n.vector.tobytes() == m.vector.tobytes() for n, m in zip(got, items()))
        assert_filters_match_memory(store, "w", items())
        changed = items([{"a": 7, "t": ["q"]}, *METADATA[1:], {"new": True}])  # n0 rewritten, a new node
        changed[-1].unique_id = "new"
        store.insert([changed[0], changed[-1]], "w")
        assert store.get("n0", "w")[0].metadata == {"a": 7, "t": ["q"]}
        assert_filters_match_memory(store, "w", changed)
        store.copy_workspace("w", "w4")
        copied = raw.get_collection(collection_name("vecbook_", "w4"))
        assert copied.metadata["vecbook:format"] == FORMAT
        assert "a" in copied.get(ids=["n0"], include=["metadatas"])["metadatas"][0]["%p"]
        assert_filters_match_memory(store, "w4", changed)
        store.delete_workspace("w")
        assert [c.name for c in raw.list_collections()] == [collection_name("vecbook_", "w4")]  # the shape registry went too
        assert side_name(collection_name("vecbook_", "w")) not in [c.name for c in raw.list_collections()]
