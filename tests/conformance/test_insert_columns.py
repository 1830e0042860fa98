"""insert(NodeColumns): many nodes as columns, on every backend, sync and async.

The columns are checked and stored exactly as the same nodes in a list would be, errors
name the row, and a refused call writes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import DimensionMismatchError, NodeColumns, ValidationError

from .test_iteration import many


def columns_of(count: int, dims: int = 16, start: int = 0) -> NodeColumns:
    vectors = np.random.default_rng(start).standard_normal((count, dims))  # float64: stored as float32
    return NodeColumns(
        ids=[f"c{i}" for i in range(start, start + count)],
        contents=[f"text {i}" for i in range(start, start + count)],
        metadatas=[{"i": i, "even": i % 2 == 0, "tags": ["a", str(i)]} for i in range(start, start + count)],
        vectors=vectors,
    )


async def test_columns_are_stored_as_the_same_nodes_would_be(make, mode):
    api = make(mode)
    await api.create_workspace("cols")
    await api.create_workspace("nodes")
    given = columns_of(1500)
    await api.insert(given, "cols")
    await api.insert(given.nodes(), "nodes")
    assert await api.count("cols") == 1500
    from_columns, from_nodes = await api.read_columns("cols"), await api.read_columns("nodes")
    order = np.argsort(from_columns.ids)
    assert [from_columns.ids[i] for i in order] == sorted(given.ids)
    assert sorted(zip(from_columns.ids, from_columns.contents)) == sorted(zip(from_nodes.ids, from_nodes.contents))
    by_id = dict(zip(from_columns.ids, from_columns.metadatas))
    assert all(by_id[i] == m for i, m in zip(given.ids, given.metadatas))
    rows = {i: r for r, i in enumerate(from_columns.ids)}
    stored = from_columns.vectors[[rows[i] for i in given.ids]]
    assert stored.dtype == np.float32 and np.array_equal(stored, given.vectors.astype(np.float32))
    hits = await api.search_by_vector(given.vectors[7], "cols", top_k=1)
    assert hits[0].unique_id == "c7" and hits[0].metadata["i"] == 7


async def test_columns_replace_nodes_with_the_same_id(api, ws):
    await api.insert(many(20), ws)
    ids = np.array(["p3", "new"])  # numpy strings, as a column of an array gives them
    changed = NodeColumns(ids=ids, contents=["three", "fresh"], metadatas=[{"k": 3}, None], vectors=np.ones((2, 16), np.float32))
    await api.insert(changed, ws)
    assert await api.count(ws) == 21
    three, fresh = await api.get(["p3", "new"], ws)
    assert type(fresh.unique_id) is str and "new" in (await api.read_columns(ws, columns=["ids"])).ids
    assert (three.content, three.metadata, fresh.metadata) == ("three", {"k": 3}, {})
    assert np.array_equal(three.vector, np.ones(16, np.float32))


async def test_columns_left_out_take_a_nodes_defaults(api, ws, model):
    await api.insert(NodeColumns(contents=["alpha", "beta", "gamma"]), ws)
    nodes = await api.nodes(ws)
    assert sorted(n.content for n in nodes) == ["alpha", "beta", "gamma"]
    assert len({n.unique_id for n in nodes}) == 3 and all(len(n.unique_id) == 32 for n in nodes)
    assert all(n.metadata == {} for n in nodes)
    assert sorted(model.embedded) == ["alpha", "beta", "gamma"]  # no vectors: the contents were embedded
    for n in nodes:
        assert np.allclose(n.vector, model.embed_batch([n.content])[0], atol=1e-6)
    await api.insert(NodeColumns(ids=["only-ids"], vectors=np.zeros((1, 16)) + 0.5), ws)
    (got,) = await api.get("only-ids", ws)
    assert got.content == "" and got.metadata == {}
    await api.insert(NodeColumns(), ws)  # no rows: nothing happens
    assert await api.count(ws) == 4


async def test_a_workspace_copied_through_its_columns(make, mode):
    api = make(mode)
    await api.create_workspace("src")
    await api.create_workspace("dst")
    await api.insert(many(700), "src")
    await api.delete(["p5", "p600"], "src")
    read = await api.read_columns("src")
    assert read.workspace_id == "src"
    await api.insert(read, "dst")  # the columns' own workspace_id is not where they go
    copied = await api.read_columns("dst")
    assert await api.count("src") == 698 and await api.count("dst") == 698
    assert sorted(zip(copied.ids, copied.contents)) == sorted(zip(read.ids, read.contents))
    rows = {i: r for r, i in enumerate(copied.ids)}
    assert np.array_equal(copied.vectors[[rows[i] for i in read.ids]], read.vectors)


async def test_a_view_of_a_bigger_array_stays_the_callers(api, ws):
    """A slice of a user's matrix (a view whose base has more rows) is not taken over by the store."""
    big = np.ones((3000, 16), dtype=np.float32)
    await api.insert(NodeColumns(ids=[f"a{i}" for i in range(1000)], vectors=big[:1000]), ws)
    big[:] = 7
    await api.insert(NodeColumns(ids=["later"], vectors=np.full((1, 16), 3, np.float32)), ws)
    assert np.array_equal((await api.get("a0", ws))[0].vector, np.ones(16, np.float32))
    assert np.all(big == 7)  # the store wrote nothing into the caller's rows


async def test_the_callers_arrays_and_dicts_stay_theirs(api, ws):
    given = columns_of(10)
    matrix = given.vectors.astype(np.float32)  # already float32: must still be copied
    given.vectors = matrix
    await api.insert(given, ws)
    matrix[:] = 0
    given.metadatas[2]["i"] = "changed"
    given.metadatas[2]["tags"].append("more")
    (got,) = await api.get("c2", ws)
    assert got.metadata == {"i": 2, "even": True, "tags": ["a", "2"]}
    assert np.abs(got.vector).sum() > 0


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (lambda c: NodeColumns(ids=c.ids[:5], vectors=c.vectors), ValidationError, "differ in length"),
        (lambda c: NodeColumns(ids=c.ids, vectors=c.vectors[:, :8]), DimensionMismatchError, "node #0"),
        (lambda c: NodeColumns(ids=c.ids[:39] + ["c0"], vectors=c.vectors), ValidationError, "'c0' appears twice"),
        (lambda c: NodeColumns(ids=c.ids, vectors=np.where(np.arange(40)[:, None] == 33, np.nan, c.vectors)), ValidationError, "node #33, unique_id='c33'"),
        (lambda c: NodeColumns(ids=c.ids, metadatas=c.metadatas[:12] + [{"bad": object()}] + c.metadatas[13:], vectors=c.vectors), ValidationError, "node #12"),
        (lambda c: NodeColumns(ids=c.ids[:20] + [""] + c.ids[21:], vectors=c.vectors), ValidationError, "node #20"),
        (lambda c: NodeColumns(ids=c.ids, contents=[1] * 40, vectors=c.vectors), ValidationError, "content must be a string"),
        (lambda c: NodeColumns(ids=c.ids, vectors=c.vectors.reshape(40, 4, 4)), ValidationError, "1-D"),
    ],
    ids=["lengths", "dimensions", "duplicate", "nan-row", "metadata", "empty-id", "content", "shape"],
)
async def test_bad_columns_are_refused_naming_the_row_and_nothing_is_written(api, ws, bad, error, words):
    await api.insert(many(3), ws)
    with pytest.raises(error, match=words.replace("(", r"\(").replace("[", r"\[")):
        await api.insert(bad(columns_of(40)), ws)
    assert await api.count(ws) == 3
    assert sorted(n.unique_id for n in await api.nodes(ws)) == ["p0", "p1", "p2"]


async def test_vectors_given_for_some_rows_only_embed_the_others(api, ws, model):
    given = np.full(16, 0.25, dtype=np.float32)
    await api.insert(NodeColumns(ids=["a", "b", "c"], contents=["one", "two", "three"], vectors=[given, None, given.tolist()]), ws)
    assert model.embedded == ["two"]
    a, b, c = await api.get(["a", "b", "c"], ws)
    assert np.array_equal(a.vector, given) and np.array_equal(c.vector, given)
    assert np.allclose(b.vector, model.embed_batch(["two"])[0], atol=1e-6)
