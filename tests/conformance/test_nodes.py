"""Upsert, delete, get and count; bad input is refused with nothing written."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vecbook import DimensionMismatchError, EmbeddingError, ValidationError, VecbookError, VectorNode


def node(i: int, **kwargs) -> VectorNode:
    kwargs.setdefault("content", f"content {i}")
    kwargs.setdefault("metadata", {"i": i})
    return VectorNode(unique_id=f"n{i}", **kwargs)


async def test_insert_get_roundtrip_is_exact(api, ws):
    vector = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    original = VectorNode(unique_id="a", content="hello", metadata={"k": "v", "n": 1.5, "nested": {"x": [1, "2", None]}}, vector=vector)
    await api.insert(original, ws)
    (got,) = await api.get("a", ws)
    assert got.content == "hello" and got.workspace_id == ws
    assert got.metadata == original.metadata
    assert got.vector.dtype == np.float32 and got.vector.tobytes() == vector.tobytes()


async def test_upsert_replaces_by_id(api, ws):
    await api.insert([node(1), node(2)], ws)
    await api.insert(node(1, content="new", metadata={"i": 100}), ws)
    assert await api.count(ws) == 2
    (got,) = await api.get("n1", ws)
    assert got.content == "new" and got.metadata == {"i": 100}


async def test_get_keeps_order_and_skips_missing(api, ws):
    await api.insert([node(i) for i in range(5)], ws)
    got = await api.get(["n3", "zzz", "n1", "n3"], ws)
    assert [n.unique_id for n in got] == ["n3", "n1"]
    assert await api.get([], ws) == []


async def test_delete_ignores_missing_ids(api, ws):
    await api.insert([node(i) for i in range(5)], ws)
    await api.delete(["n1", "does-not-exist"], ws)
    await api.delete("n2", ws)
    await api.delete([], ws)
    assert await api.count(ws) == 3
    assert await api.get(["n1", "n2"], ws) == []


async def test_nodes_with_vectors_are_not_embedded(api, ws, model):
    await api.insert(node(1, vector=np.ones(16)), ws)
    await api.insert([node(2), node(3, vector=np.ones(16))], ws)
    assert model.embedded == ["content 2"]


async def test_embedding_failure_writes_nothing(api, ws, model):
    await api.insert(node(0), ws)
    model.fail = True
    with pytest.raises(EmbeddingError):
        await api.insert([node(1, vector=np.ones(16)), node(2)], ws)
    assert await api.count(ws) == 1


BAD_BATCHES = {
    "duplicate ids": lambda: [node(1, vector=np.ones(16)), node(1, vector=np.ones(16))],
    "wrong dimension": lambda: [node(1, vector=np.ones(16)), node(2, vector=np.ones(15))],
    "nan": lambda: [node(1, vector=np.ones(16)), node(2, vector=[math.nan] * 16)],
    "inf": lambda: [node(1, vector=np.ones(16)), node(2, vector=[math.inf] * 16)],
    "empty id": lambda: [node(1, vector=np.ones(16)), VectorNode(unique_id="", content="x")],
    "set in metadata": lambda: [node(1), node(2, metadata={"s": {1, 2}})],
    "object in metadata": lambda: [node(1), node(2, metadata={"o": object()})],
    "nan in metadata": lambda: [node(1), node(2, metadata={"x": math.nan})],
    "int key in metadata": lambda: [node(1), node(2, metadata={"d": {1: "a"}})],
    "not a node": lambda: [node(1), {"unique_id": "x"}],
    "metadata not a dict": lambda: [node(1), VectorNode.model_construct(unique_id="n2", workspace_id="", content="x", metadata=["a"], vector=np.ones(16, dtype=np.float32))],
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
async def test_bad_batch_writes_nothing(api, ws, case):
    await api.insert(node(0, vector=np.ones(16)), ws)
    with pytest.raises(ValidationError) as info:
        await api.insert(BAD_BATCHES[case](), ws)
    assert isinstance(info.value, (VecbookError, ValueError))
    assert await api.count(ws) == 1
    assert await api.get("n1", ws) == []


async def test_dimension_mismatch_names_both_sizes(api, ws):
    await api.insert(node(0, vector=np.ones(16)), ws)
    with pytest.raises(DimensionMismatchError, match="15.*16|16.*15"):
        await api.insert(node(1, vector=np.ones(15)), ws)


async def test_workspace_without_model_learns_dimension_from_first_insert(make, mode):
    api = make(mode, embedding_model=None)
    await api.create_workspace("w")
    await api.insert(node(1, vector=np.ones(5)), "w")
    with pytest.raises(DimensionMismatchError):
        await api.insert(node(2, vector=np.ones(6)), "w")
    with pytest.raises(ValidationError, match="embedding"):
        await api.insert(node(3), "w")
    assert await api.count("w") == 1


async def test_large_batch_is_split_and_complete(make, mode):
    api = make(mode, batch_size=64)
    await api.create_workspace("w")
    await api.insert([node(i) for i in range(500)], "w")
    assert await api.count("w") == 500
