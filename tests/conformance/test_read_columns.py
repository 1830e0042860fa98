"""read_columns(columns=, offset=): a subset of the columns, a slice of the rows, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import NodeColumns, ValidationError, WorkspaceNotFoundError

from .test_iteration import many

ALL = ("ids", "contents", "metadatas", "vectors")


async def test_offset_and_limit_page_like_slicing(make, mode):
    api = make(mode, batch_size=40)  # pages of the default read cross the slices' edges
    await api.create_workspace("w")
    await api.insert(many(230), "w")
    await api.delete(["p3", "p100"], "w")
    full = await api.read_columns("w")
    assert len(full) == 228
    for offset, limit in [(0, 50), (50, 50), (37, 41), (200, 100), (228, 5), (500, 5), (10, 0), (0, None), (190, None)]:
        part = await api.read_columns("w", offset=offset, limit=limit)
        stop = None if limit is None else offset + limit
        assert part.ids == full.ids[offset:stop]
        assert part.contents == full.contents[offset:stop] and part.metadatas == full.metadatas[offset:stop]
        assert np.array_equal(part.vectors, full.vectors[offset:stop]) and part.vectors.shape[1] == 16
    pages = [await api.read_columns("w", offset=o, limit=64, columns=["ids"]) for o in range(0, 228, 64)]
    assert [i for p in pages for i in p.ids] == full.ids  # paging visits every node once, in order

    even = await api.read_columns("w", filter_dict={"even": True})
    assert (await api.read_columns("w", filter_dict={"even": True}, offset=7, limit=9)).ids == even.ids[7:16]


async def test_a_subset_of_columns_equals_the_full_reads_columns(api, ws):
    nodes = many(90)
    nodes[4].metadata["nested"] = {"a": [1, 2]}
    await api.insert(nodes, ws)
    full = await api.read_columns(ws)
    for columns in (["ids"], ["vectors"], ["metadatas", "ids"], ["contents"], ("contents", "vectors"), list(ALL)):
        part = await api.read_columns(ws, columns=columns)
        assert isinstance(part, NodeColumns) and len(part) == 90
        for name in ALL:
            got, want = getattr(part, name), getattr(full, name)
            if name not in columns:
                assert got is None
            elif name == "vectors":
                assert got.dtype == np.float32 and np.array_equal(got, want)
            else:
                assert got == want
    ids_only = await api.read_columns(ws, columns=["ids"], filter_dict={"even": False}, limit=5)
    assert ids_only.ids == [i for i, m in zip(full.ids, full.metadatas) if not m["even"]][:5]
    assert list(ids_only.to_dataframe().columns) == ["unique_id"]
    with pytest.raises(ValueError, match="vectors"):
        ids_only.nodes()
    meta = await api.read_columns(ws, columns=["metadatas"])
    meta.metadatas[full.ids.index("p4")]["nested"]["a"].append(3)  # a copy: the store keeps its own
    assert (await api.get("p4", ws))[0].metadata["nested"] == {"a": [1, 2]}
    vectors = await api.read_columns(ws, columns=["vectors"], offset=80)
    assert vectors.vectors.shape == (10, 16) and "dimensions=16" in repr(vectors) and "columns=['vectors']" in repr(vectors)


async def test_invalid_columns_and_offsets_raise_typed_errors(api, ws):
    await api.insert(many(5), ws)
    for bad in ("ids", ["ids", "vector"], ["embeddings"], [], [1], 3):
        with pytest.raises(ValidationError, match="column"):
            await api.read_columns(ws, columns=bad)
    for bad in (-1, 1.5, "2", True, None):
        with pytest.raises(ValidationError, match="offset"):
            await api.read_columns(ws, offset=bad)
    with pytest.raises(ValidationError, match="limit"):
        await api.read_columns(ws, limit=-2, columns=["ids"])
    with pytest.raises(TypeError, match="did you mean 'columns'"):
        await api.read_columns(ws, colums=["ids"])  # a misspelt keyword
    with pytest.raises(WorkspaceNotFoundError):
        await api.read_columns("no-such-workspace", columns=["ids"], offset=3)


async def test_columns_of_an_empty_workspace(api, ws):
    part = await api.read_columns(ws, columns=["ids", "vectors"], offset=10)
    assert len(part) == 0 and part.ids == [] and part.contents is None and part.vectors.shape[0] == 0


async def test_node_ids_read_those_nodes_in_the_order_given(api, ws):
    nodes = many(60)
    nodes[7].metadata["nested"] = {"a": [1]}
    await api.insert(nodes, ws)
    full = await api.read_columns(ws)
    by_id = {i: k for k, i in enumerate(full.ids)}
    asked = ["p42", "p7", "nope", "p3", "p42", "p59"]  # a missing id is left out, a repeated one read once
    got = await api.read_columns(ws, node_ids=asked)
    assert got.ids == ["p42", "p7", "p3", "p59"]
    for name in ("contents", "metadatas"):
        assert getattr(got, name) == [getattr(full, name)[by_id[i]] for i in got.ids]
    assert np.array_equal(got.vectors, full.vectors[[by_id[i] for i in got.ids]])
    got.metadatas[1]["nested"]["a"].append(2)  # a copy
    assert (await api.get("p7", ws))[0].metadata["nested"] == {"a": [1]}
    part = await api.read_columns(ws, node_ids=asked, columns=["metadatas"], filter_dict={"even": True}, offset=1, limit=1)
    even = [i for i in ["p42", "p7", "p3", "p59"] if full.metadatas[by_id[i]]["even"]]
    assert part.ids is None and part.metadatas == [full.metadatas[by_id[i]] for i in even][1:2]
    assert (await api.read_columns(ws, node_ids="p5", columns=["ids"])).ids == ["p5"]
    every = [full.ids[0], *reversed(full.ids[1:-1]), full.ids[-1]]  # every node, first and last in place
    got = await api.read_columns(ws, node_ids=every)
    assert got.ids == every and got.contents == [full.contents[by_id[i]] for i in every]
    assert np.array_equal(got.vectors, full.vectors[[by_id[i] for i in every]])
    assert len(await api.read_columns(ws, node_ids=[])) == 0
    with pytest.raises(ValidationError):
        await api.read_columns(ws, node_ids=["p1", ""])
