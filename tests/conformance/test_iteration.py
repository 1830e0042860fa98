"""Iteration streams every node exactly once, past any page size."""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import VectorNode


def many(count: int, dims: int = 16) -> list[VectorNode]:
    vectors = np.random.default_rng(11).standard_normal((count, dims)).astype(np.float32)
    return [VectorNode(unique_id=f"p{i}", content=f"c{i}", metadata={"even": i % 2 == 0}, vector=vectors[i]) for i in range(count)]


async def test_iteration_past_page_size(make, mode):
    api = make(mode, batch_size=100)
    await api.create_workspace("w")
    await api.insert(many(2345), "w")
    listed = await api.nodes("w")
    ids = [n.unique_id for n in listed]
    assert len(ids) == 2345 and set(ids) == {f"p{i}" for i in range(2345)}
    assert all(n.vector is not None and n.vector.shape == (16,) for n in listed)
    small_pages = await api.nodes("w", page_size=7, filter_dict={"even": True})
    assert {n.unique_id for n in small_pages} == {f"p{i}" for i in range(0, 2345, 2)}


async def test_limit_and_callback(api, ws):
    await api.insert(many(50), ws)
    assert len(await api.nodes(ws, limit=10, page_size=3)) == 10
    assert await api.nodes(ws, limit=0) == []
    ids = await api.nodes(ws, callback_fn=lambda n: n.unique_id)
    assert sorted(ids) == sorted(f"p{i}" for i in range(50))


async def test_iteration_after_deletes(api, ws):
    await api.insert(many(300), ws)
    await api.delete([f"p{i}" for i in range(0, 300, 3)], ws)
    ids = {n.unique_id for n in await api.nodes(ws, page_size=50)}
    assert ids == {f"p{i}" for i in range(300) if i % 3}
    assert await api.count(ws) == 200


async def test_read_columns_matches_iteration(api, ws):
    from vecbook import NodeColumns, ValidationError, WorkspaceNotFoundError

    nodes = many(120)
    nodes[5].metadata["nested"] = {"a": [1, 2]}
    await api.insert(nodes, ws)
    await api.delete(["p7"], ws)
    columns = await api.read_columns(ws)
    assert isinstance(columns, NodeColumns) and len(columns) == 119
    assert columns.vectors.dtype == np.float32 and columns.vectors.shape == (119, 16)
    by_id = {n.unique_id: n for n in nodes}
    for node_id, content, metadata, vector in zip(columns.ids, columns.contents, columns.metadatas, columns.vectors):
        assert (content, metadata) == (by_id[node_id].content, by_id[node_id].metadata)
        assert np.array_equal(vector, by_id[node_id].vector)  # bit-exact
    assert sorted(columns.ids) == sorted(n.unique_id for n in await api.nodes(ws))
    first = columns.nodes()[0]
    assert first.workspace_id == ws and first == by_id[first.unique_id].model_copy(update={"workspace_id": ws})

    even = await api.read_columns(ws, filter_dict={"even": True}, limit=10)
    assert len(even) == 10 and all(m["even"] for m in even.metadatas)
    assert len(await api.read_columns(ws, limit=0)) == 0

    columns.metadatas[columns.ids.index("p5")]["nested"]["a"].append(3)  # a copy: the store keeps its own
    columns.vectors[:] = 0
    again = await api.read_columns(ws, filter_dict={"even": False}, limit=500)
    assert len(again) == 59
    assert (await api.get("p5", ws))[0].metadata["nested"] == {"a": [1, 2]}
    assert np.array_equal((await api.get("p4", ws))[0].vector, by_id["p4"].vector)

    with pytest.raises(WorkspaceNotFoundError):
        await api.read_columns("no-such-workspace")
    with pytest.raises(ValidationError):
        await api.read_columns(ws, limit=-1)


async def test_read_columns_of_an_empty_workspace(api, ws):
    columns = await api.read_columns(ws)
    assert len(columns) == 0 and columns.ids == [] and columns.vectors.shape[0] == 0
