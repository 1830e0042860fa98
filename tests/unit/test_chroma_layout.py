"""The chroma backend's collection names and vector layouts (vecbook.stores.chroma.layout)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecbook import MemoryVectorStore, ValidationError, VectorNode
from vecbook.stores.engine.batch import validate_workspace_id

chromadb = pytest.importorskip("chromadb")

from vecbook.stores.chroma import ChromaVectorStore, collection_name, workspace_of  # noqa: E402
from vecbook.stores.chroma.legacy import side_name  # noqa: E402

from tests.unit.chroma_helpers import format_1_workspace, nodes, vec  # noqa: E402


@pytest.fixture
def store(chroma_store):  # the conformance suite's embedded variant (tests/backends/chroma.py)
    return chroma_store


# ---- collection names -----------------------------------------------------------------------

LEGAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")
workspace_ids = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", fullmatch=True).filter(
    lambda ws: ws.split(".")[0].lower() not in {"con", "prn", "aux", "nul"} and not re.fullmatch(r"(com|lpt)\d", ws.split(".")[0].lower())
)


@settings(max_examples=300)
@given(workspace_ids, st.sampled_from(["vecbook_", "t0123456789ab_", "x1"]))
def test_collection_names_are_legal_and_round_trip(ws, prefix):
    validate_workspace_id(ws)
    name = collection_name(prefix, ws)
    assert LEGAL.fullmatch(name) and ".." not in name and len(name) <= 512
    assert workspace_of(prefix, name) == ws
    assert LEGAL.fullmatch(side_name(name)) and workspace_of(prefix, side_name(name)) is None  # its shape registry


@pytest.mark.parametrize("name", ["other", "vecbook_", "vecbook_a-e-e", "vecbook_-dx", "vecbook_a-q", "vecbook_a-", "vecbookx", "vecbook_con"])
def test_names_vecbook_did_not_make_are_not_workspaces(name):
    assert workspace_of("vecbook_", name) is None


def test_awkward_ids_are_real_collections(store):
    ids = ["a", "a-", "a..b", "_x", "A1", "a1", "x" * 128, "a.-_", "1.2.3.4"]
    for ws in ids:
        store.create_workspace(ws)
        store.insert(nodes(1), ws)
    assert store.list_workspaces() == sorted(ids)
    assert all(store.count(ws) == 1 for ws in ids)


def test_list_ignores_collections_vecbook_did_not_make(store):
    raw = chromadb.PersistentClient(path=store.store_dir)
    raw.create_collection("other", embedding_function=None)
    raw.create_collection("vecbook_a-q", embedding_function=None)
    store.create_workspace("mine")
    assert store.list_workspaces() == ["mine"]


# ---- vector layouts ----------------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
def test_vectors_come_back_exactly(tmp_path, distance):
    # Chroma returns cosine vectors rescaled from unit length: vecbook keeps their bytes in %x.
    with ChromaVectorStore(store_dir=str(tmp_path), distance=distance) as s:
        s.create_workspace("w")
        items = nodes(20, dims=16)
        s.insert(items, "w")
        got = {n.unique_id: n.vector for n in s.iter_workspace_nodes("w")}
        assert all(got[n.unique_id].tobytes() == n.vector.tobytes() for n in items)
        raw = chromadb.PersistentClient(path=str(tmp_path)).get_collection(collection_name("vecbook_", "w"), embedding_function=None)
        assert ("%x" in raw.get(limit=1, include=["metadatas"])["metadatas"][0]) == (distance == "cosine")


@pytest.mark.parametrize(("made", "opened"), [("cosine", "dot"), ("dot", "cosine"), ("euclidean", "cosine")])
def test_distance_is_fixed_by_the_collection(tmp_path, made, opened):
    # cosine and dot workspaces are both ip collections: vecbook:distance tells them apart
    with ChromaVectorStore(store_dir=str(tmp_path), distance=made) as first:
        first.create_workspace("w")
        first.insert(nodes(3), "w")
    with ChromaVectorStore(store_dir=str(tmp_path), distance=opened) as other:
        with pytest.raises(ValidationError, match=f"'{made}'"):
            other.search_by_vector(vec(0), "w")
        assert other.count("w") == 3  # everything else still works


def test_a_format_1_workspace_is_read_written_and_copied_into_format_2(tmp_path):
    old = nodes(6, metadata=lambda i: {"i": i, "tags": ["a", f"t{i}"]})
    format_1_workspace(tmp_path, "w", old)
    memory = MemoryVectorStore()
    memory.create_workspace("w")
    memory.insert(old, "w")
    with ChromaVectorStore(store_dir=str(tmp_path)) as s:
        new = VectorNode(unique_id="new", content="n", metadata={"i": 9}, vector=vec(9) * 3)
        s.insert(new, "w")
        memory.insert(new, "w")
        for n in old + [new]:
            (got,) = s.get(n.unique_id, "w")
            assert got.vector.tobytes() == n.vector.tobytes() and got.metadata == n.metadata
        for q in range(3):
            ours = s.search_by_vector(vec(q + 20), "w", top_k=4, filter_dict={"tags": "a"})
            theirs = memory.search_by_vector(vec(q + 20), "w", top_k=4, filter_dict={"tags": "a"})
            assert [n.unique_id for n in ours] == [n.unique_id for n in theirs]
            assert np.allclose([n.score for n in ours], [n.score for n in theirs], atol=1e-5)
        raw = chromadb.PersistentClient(path=str(tmp_path))
        assert "%x" in raw.get_collection(collection_name("vecbook_", "w")).get(ids=["new"], include=["metadatas"])["metadatas"][0]  # Chroma normalises it
        s.copy_workspace("w", "w2")
        copied = raw.get_collection(collection_name("vecbook_", "w2"))
        assert copied.configuration_json["hnsw"]["space"] == "ip" and copied.metadata["vecbook:distance"] == "cosine"
        assert {n.unique_id: n.vector.tobytes() for n in s.iter_workspace_nodes("w2")} == {n.unique_id: n.vector.tobytes() for n in old + [new]}


def test_unit_vectors_are_stored_as_given_and_others_normalised_with_a_copy(tmp_path):
    unit = [VectorNode(unique_id=f"u{i}", content="", vector=vec(i, 384) / np.linalg.norm(vec(i, 384))) for i in range(20)]
    other = [VectorNode(unique_id="big", content="", vector=vec(30, 384) * 5), VectorNode(unique_id="zero", content="", vector=np.zeros(384, np.float32))]
    with ChromaVectorStore(store_dir=str(tmp_path)) as s:
        s.create_workspace("w")
        s.insert(unit + other, "w")
        raw = chromadb.PersistentClient(path=str(tmp_path)).get_collection(collection_name("vecbook_", "w"))
        found = raw.get(include=["metadatas", "embeddings"])
        stored = dict(zip(found["ids"], np.asarray(found["embeddings"], dtype=np.float32)))
        copied = {i for i, md in zip(found["ids"], found["metadatas"]) if "%x" in md}
        assert copied == {"big"}  # float32-normalised vectors need no copy, nor does the zero vector
        assert all(stored[n.unique_id].tobytes() == n.vector.tobytes() for n in unit + other[1:])
        assert abs(np.linalg.norm(stored["big"].astype(np.float64)) - 1) < 1e-6
        assert {n.unique_id: n.vector.tobytes() for n in s.iter_workspace_nodes("w")} == {n.unique_id: n.vector.tobytes() for n in unit + other}
        hits = s.search_by_vector(other[0].vector, "w", top_k=3)
        assert hits[0].unique_id == "big" and abs(hits[0].score - 1) < 1e-6
