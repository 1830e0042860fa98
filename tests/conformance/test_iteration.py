"""Iteration streams every node exactly once, past any page size."""

from __future__ import annotations

import numpy as np

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
