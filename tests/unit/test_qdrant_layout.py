"""Qdrant's layout: collection names (and their prefix), point ids, the payload of a point."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from vecbook import ValidationError, VectorNode

pytest.importorskip("qdrant_client")
from qdrant_client import models  # noqa: E402

from tests.unit.test_qdrant_backend import nodes, store, vec  # noqa: E402, F401 - store: a fixture
from vecbook.stores.qdrant import points as qdrant_points  # noqa: E402
from vecbook.stores.qdrant import QdrantVectorStore, collection_name, point_id, workspace_of  # noqa: E402
from vecbook.stores.qdrant.points import pending_name  # noqa: E402


@pytest.mark.parametrize("prefix", ["vecbook_", "team-a_", "x_"])
@pytest.mark.parametrize("ws", ["ws", "my_ws", "a.b-c", "_x", "A1", "Notes", "notes", "X" * 128, "x" * 128, "vecbook_x", "a_B_c", "p_x", "x_1_a"])
def test_collection_names_round_trip(ws, prefix):
    name = collection_name(prefix, ws)
    assert workspace_of(prefix, name) == ws
    assert workspace_of(prefix, pending_name(prefix, ws)) == ws
    assert len(name) <= 255 and not any(c in name for c in '<>:"/\\|?*')
    if ws == ws.lower():
        assert name == f"{prefix}{ws}"  # readable where it can be
    if prefix == "vecbook_":  # the names of earlier versions
        assert name == (f"vecbook_{ws}" if ws == ws.lower() else f"vecbookx_{sum(1 << i for i, c in enumerate(ws) if c.isupper()):x}_{ws.lower()}")
        assert pending_name(prefix, ws) == f"vecbookp_{name}"


def test_ids_differing_in_case_never_share_a_collection_even_on_case_insensitive_disks():
    names = {collection_name("vecbook_", ws).lower() for ws in ["notes", "Notes", "NOTES", "nOtes"]}
    assert len(names) == 4


@pytest.mark.parametrize("name", ["other", "vecbook", "vecbook_", "vecbook_../x", "vecbook_A", "vecbookx_zz_a", "vecbookx_01_a", "vecbookx_0_a", "vecbookx_4_a"])
def test_collections_vecbook_did_not_make_are_not_workspaces(name):
    assert workspace_of("vecbook_", name) is None


def test_list_ignores_foreign_collections(store):
    store.create_workspace("Mine", dimensions=4)
    raw = store._client.client
    for name in ("theirs", "vecbook_Bad", "vecbookx_1_"):
        raw.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    assert store.list_workspaces() == ["Mine"]


def test_stores_with_other_prefixes_share_a_qdrant_without_seeing_each_other(tmp_path):
    folder = str(tmp_path / "q")
    team_a = QdrantVectorStore(path=folder, collection_prefix="team-a_")
    team_a.create_workspace("Notes")
    team_a.create_workspace("later")  # no vector size yet: a marker collection
    team_a.insert(nodes(3), "Notes")
    assert "collection_prefix='team-a_'" in repr(team_a)
    team_a.close()
    default = QdrantVectorStore(path=folder)
    assert default.list_workspaces() == [] and not default.exist_workspace("Notes")
    default.create_workspace("Notes")
    default.insert(nodes(5), "Notes")
    default.close()
    team_a = QdrantVectorStore(path=folder, collection_prefix="team-a_")
    assert sorted(team_a.list_workspaces()) == ["Notes", "later"] and team_a.count("Notes") == 3
    team_a.delete_workspace("Notes")
    team_a.close()
    default = QdrantVectorStore(path=folder)
    assert default.list_workspaces() == ["Notes"] and default.count("Notes") == 5
    default.close()


@pytest.mark.parametrize("prefix", ["", "vecbook", "a", "_a_", "a b_", "ü_", 3, "x" * 103 + "_"])
def test_a_bad_collection_prefix_is_refused(prefix):
    with pytest.raises(ValidationError, match="collection_prefix"):
        QdrantVectorStore(location=":memory:", collection_prefix=prefix)


def test_point_ids_are_uuid5_of_the_node_id():
    assert point_id("doc-1") == str(uuid.uuid5(qdrant_points._ID_NAMESPACE, "doc-1"))
    assert point_id("doc-1") != point_id("doc-2")
    uuid.UUID(point_id("\ud800 lone surrogate"))  # any id check_node_id accepts


def test_payload_keeps_the_original_id_and_vector(store):
    store.create_workspace("w")
    original = VectorNode(unique_id="a/b c", content="x", metadata={"k": [1, None]}, vector=[3.0, 4.0, 1e-8])
    store.insert(original, "w")
    (record,) = store._client.client.retrieve(collection_name("vecbook_", "w"), ids=[point_id("a/b c")], with_vectors=True)
    assert record.payload["unique_id"] == "a/b c"
    assert not np.array_equal(record.vector, original.vector)  # Qdrant normalised it (cosine)...
    (got,) = store.get("a/b c", "w")
    assert got.vector.tobytes() == original.vector.tobytes()  # ...we return the original


@pytest.mark.parametrize("distance", ["dot", "euclidean"])
def test_other_distances_need_no_copy_of_the_vector(distance):
    with QdrantVectorStore(location=":memory:", distance=distance) as s:
        s.create_workspace("w")
        s.insert(nodes(3), "w")
        (record,) = s._client.client.retrieve(collection_name("vecbook_", "w"), ids=[point_id("n1")], with_vectors=True)
        assert "_vector" not in record.payload and np.asarray(record.vector, np.float32).tobytes() == vec(1).tobytes()
        assert s.get("n1", "w")[0].vector.tobytes() == vec(1).tobytes()
