"""NodeColumns.from_dataframe: a pandas DataFrame into a workspace, the way back of to_dataframe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vecbook import HashEmbeddingModel, LocalVectorStore, MemoryVectorStore, NodeColumns, VectorNode


def mixed_nodes(count: int) -> list[VectorNode]:
    """Nodes whose metadata differ in their keys, as real metadata do."""
    vectors = np.random.default_rng(3).standard_normal((count, 8)).astype(np.float32)
    nodes = []
    for i in range(count):
        metadata = {"name": f"pkg{i}", "rank": i, "stable": i % 3 == 0}
        if i % 2:
            metadata["tags"] = ["web", str(i)]
        if i % 5 == 0:
            metadata["author"] = {"name": f"a{i}", "langs": ["py"]}
        nodes.append(VectorNode(unique_id=f"n{i}", content=f"summary {i}", metadata=metadata, vector=vectors[i]))
    return nodes


def test_a_workspace_goes_through_a_dataframe_and_back_unchanged(tmp_path):
    source = MemoryVectorStore()
    source.create_workspace("src")
    nodes = mixed_nodes(500)
    source.insert(nodes, "src")
    frame = source.read_columns("src").to_dataframe(vectors=True)
    assert {"tags", "author", "vector"} <= set(frame.columns) and frame["tags"].isna().sum() == 250

    target = LocalVectorStore(store_dir=tmp_path)
    target.create_workspace("copy")
    target.insert(NodeColumns.from_dataframe(frame), "copy")
    got = {n.unique_id: n for n in target.get([n.unique_id for n in nodes], "copy")}
    assert len(got) == 500
    for node in nodes:
        copy = got[node.unique_id]
        assert copy.content == node.content and copy.metadata == node.metadata  # no key a gap filled in
        assert copy.vector.tobytes() == node.vector.tobytes()
        assert type(copy.metadata["rank"]) is int
    target.close()


def test_a_users_frame_dates_numbers_gaps_and_missing_vectors():
    model = HashEmbeddingModel(dimensions=4)
    store = MemoryVectorStore(embedding_model=model)
    store.create_workspace("w")
    frame = pd.DataFrame({
        "content": ["alpha", "beta", "gamma"],
        "released": pd.to_datetime(["2024-01-15", None, "2023-12-31 10:30"], format="ISO8601"),
        "downloads": np.array([10, 20, 30], dtype=np.int32),
        "score": [0.5, np.nan, 1.5],
        "vector": [np.ones(4), None, [0.5, 0.5, 0.5, 0.5]],
    })
    columns = NodeColumns.from_dataframe(frame)
    assert columns.ids is None and repr(columns) == "NodeColumns(workspace_id='', rows=3, columns=['contents', 'metadatas', 'vectors'])"
    store.insert(columns, "w")
    nodes = {n.content: n for n in store.iter_workspace_nodes("w")}
    assert len({n.unique_id for n in nodes.values()}) == 3  # new ids
    assert nodes["alpha"].metadata == {"released": "2024-01-15T00:00:00", "downloads": 10, "score": 0.5}
    assert nodes["beta"].metadata == {"downloads": 20}  # its gaps are not stored as NaN or None
    assert type(nodes["gamma"].metadata["downloads"]) is int
    assert np.array_equal(nodes["alpha"].vector, np.ones(4, np.float32))
    assert np.allclose(nodes["beta"].vector, model.embed_batch(["beta"])[0])  # no vector: embedded
    in_2024 = store.search("alpha", "w", top_k=3, filter_dict={"released": {"gte": "2024-01-01"}})
    assert [n.content for n in in_2024] == ["alpha"]


def test_what_is_not_a_frame_of_columns_is_refused():
    with pytest.raises(TypeError, match="DataFrame"):
        NodeColumns.from_dataframe({"content": ["a"]})
    twice = pd.DataFrame([[1, 2]], columns=["rank", "rank"])
    with pytest.raises(ValueError, match="rank"):
        NodeColumns.from_dataframe(twice)
