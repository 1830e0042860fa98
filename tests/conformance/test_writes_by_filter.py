"""Delete and update by filter on every backend, sync and async: what is selected, what a call
returns, all or nothing, vectors never re-embedded, and searches that see the new values at once."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.oracle import matches
from vecbook import FilterError, ValidationError, VectorNode, WorkspaceNotFoundError

from .dataset import nodes

ONES = np.ones(16, dtype=np.float32)


def ids(items) -> list[str]:
    return sorted(n.unique_id for n in items)


async def everything(api, ws) -> dict[str, VectorNode]:
    return {n.unique_id: n for n in await api.nodes(ws)}


# ---- delete ----------------------------------------------------------------------------------


@pytest.mark.parametrize("filter_dict", [{"category": "AI"}, {"rank": {"gte": 30}}, {"tags": "y"}, {"nested.level": 1}, {"missing": "x"}])
async def test_delete_by_filter_removes_exactly_the_matching_nodes(api, ws, filter_dict):
    items = nodes(40)
    await api.insert(items, ws)
    doomed = [n.unique_id for n in items if matches(n.metadata, filter_dict)]
    assert await api.delete(workspace_id=ws, filter_dict=filter_dict) == len(doomed)
    left = [n.unique_id for n in items if n.unique_id not in doomed]
    assert ids(await api.nodes(ws)) == sorted(left)
    assert await api.count(ws) == len(left) and await api.count(ws, filter_dict=filter_dict) == 0
    assert ids(await api.search_by_vector(ONES, ws, top_k=40)) == sorted(left)


async def test_delete_by_id_is_as_in_the_guide(api, ws):
    await api.insert(nodes(5), ws)
    assert await api.delete("d000", ws) is None
    assert await api.delete(["d001", "gone"], workspace_id=ws) is None
    assert await api.delete(node_ids=["d002"], workspace_id=ws) is None
    assert ids(await api.nodes(ws)) == ["d003", "d004"]


async def test_delete_needs_ids_or_a_filter_and_refuses_an_empty_filter(api, ws):
    await api.insert(nodes(5), ws)
    with pytest.raises(TypeError, match="not both"):
        await api.delete(["d000"], ws, filter_dict={"rank": 1})
    with pytest.raises(TypeError, match="not neither"):
        await api.delete(workspace_id=ws)
    with pytest.raises(ValidationError, match="delete_workspace"):
        await api.delete(workspace_id=ws, filter_dict={})
    with pytest.raises(FilterError):
        await api.delete(workspace_id=ws, filter_dict={"rank": {"between": 1}})
    with pytest.raises(WorkspaceNotFoundError):
        await api.delete(workspace_id="nope", filter_dict={"rank": 1})
    assert await api.count(ws) == 5


async def test_a_failed_delete_by_filter_deletes_nothing(make, mode):
    api = make(mode, batch_size=4)
    await api.create_workspace("w")
    await api.insert(nodes(20), "w")
    fail_midway(api.store, "_delete")
    with pytest.raises(RuntimeError, match="injected"):
        await api.delete(workspace_id="w", filter_dict={"rank": {"lt": 12}})
    api.store.__dict__.pop("_delete")
    assert ids(await api.nodes("w")) == ids(nodes(20))


# ---- update_metadata -------------------------------------------------------------------------------


async def test_update_by_ids_merges_one_level_and_none_removes(api, ws):
    await api.insert(
        [
            VectorNode(unique_id="a", content="a", metadata={"k": 1, "author": {"name": "x", "age": 3}, "drop": "me"}, vector=ONES),
            VectorNode(unique_id="b", content="b", metadata={"k": 2}, vector=ONES),
        ],
        ws,
    )
    patch = {"k": 10, "author": {"name": "y"}, "drop": None, "new": [1, "two"]}
    assert await api.update_metadata(ws, patch, node_ids=["a", "missing"]) == 1
    (a,) = await api.get("a", ws)
    assert a.metadata == {"k": 10, "author": {"name": "y"}, "new": [1, "two"]}
    (b,) = await api.get("b", ws)
    assert b.metadata == {"k": 2}
    assert await api.update_metadata(ws, patch, node_ids="a") == 0  # nothing changes: nothing counted
    assert await api.update_metadata(ws, {"k": 10.0}, node_ids="a") == 1  # 10.0 is stored as given
    assert await api.update_metadata(ws, {"gone": None}, node_ids=["a", "b"]) == 0


async def test_update_by_filter_is_seen_by_filters_and_searches_at_once(api, ws):
    items = nodes(40)
    await api.insert(items, ws)
    chosen = {n.unique_id for n in items if matches(n.metadata, {"category": "AI"})}
    patch = {"category": "robots", "rank": 1000, "date": "2030-01-01", "nested": {"level": 7}}
    assert await api.update_metadata(ws, patch, filter_dict={"category": "AI"}) == len(chosen)
    assert await api.count(ws, filter_dict={"category": "AI"}) == 0
    for filter_dict in ({"category": "robots"}, {"rank": {"gte": 1000}}, {"date": {"gt": "2029-12-31"}}, {"nested.level": 7}):
        assert {n.unique_id for n in await api.nodes(ws, filter_dict=filter_dict)} == chosen, filter_dict
        found = await api.search_by_vector(ONES, ws, top_k=40, filter_dict=filter_dict)
        assert {n.unique_id for n in found} == chosen, filter_dict
        assert await api.count(ws, filter_dict=filter_dict) == len(chosen)
    assert {n.unique_id for n in await api.nodes(ws, filter_dict={"nested.name": {"exists": True}})}.isdisjoint(chosen)
    assert ("robots", len(chosen)) in [tuple(v) for v in await api.distinct_values(ws, "category")]
    assert (await api.field_range(ws, "rank")).max == 1000
    stored = await everything(api, ws)
    for n in items:
        expected = {**n.metadata, **patch} if n.unique_id in chosen else n.metadata
        assert stored[n.unique_id].metadata == expected
        assert stored[n.unique_id].content == n.content


async def test_update_never_re_embeds_and_keeps_vectors_bit_for_bit(api, ws, model):
    await api.insert([VectorNode(unique_id=f"n{i}", content=f"text {i}", metadata={"i": i}) for i in range(10)], ws)
    before = {n.unique_id: n.vector.tobytes() for n in await api.nodes(ws)}
    model.embedded.clear()
    assert await api.update_metadata(ws, {"seen": True}, filter_dict={"i": {"lt": 5}}) == 5
    assert await api.update_metadata(ws, {"i": -1}, node_ids=["n7"]) == 1
    assert model.embedded == []
    assert {n.unique_id: n.vector.tobytes() for n in await api.nodes(ws)} == before
    hits = await api.search("text 3", ws, top_k=1, filter_dict={"seen": True})
    assert hits[0].unique_id == "n3" and model.embedded == ["text 3"]  # only the query


async def test_update_where_the_filter_reads_the_field_it_changes(make, mode):
    api = make(mode, batch_size=5)  # many pages: a paged update would skip nodes
    await api.create_workspace("w")
    await api.insert([VectorNode(unique_id=f"n{i:02d}", content="c", metadata={"status": "new"}, vector=np.full(16, i + 1.0)) for i in range(23)], "w")
    assert await api.update_metadata("w", {"status": "done"}, filter_dict={"status": "new"}) == 23
    assert await api.count("w", filter_dict={"status": "done"}) == 23
    assert await api.update_metadata("w", {"status": "done"}, filter_dict={}) == 0  # {} selects every node


async def test_bad_updates_raise_and_change_nothing(api, ws):
    items = nodes(10)
    await api.insert(items, ws)
    bad = [
        {"n": 2**63},  # outside int64, as for inserts
        {"n": float("nan")},
        {"n": {"deep": object()}},
        {1: "non-string key"},
    ]
    for patch in bad:
        with pytest.raises(ValidationError):
            await api.update_metadata(ws, patch, filter_dict={"rank": {"gte": 0}})
    with pytest.raises(ValidationError):
        await api.update_metadata(ws, ["not", "a", "dict"], node_ids="d001")
    with pytest.raises(TypeError, match="not both"):
        await api.update_metadata(ws, {"a": 1}, node_ids="d001", filter_dict={"rank": 1})
    with pytest.raises(TypeError, match="not neither"):
        await api.update_metadata(ws, {"a": 1})
    with pytest.raises(WorkspaceNotFoundError):
        await api.update_metadata("nope", {"a": 1}, node_ids="x")
    stored = await everything(api, ws)
    assert all(stored[n.unique_id].metadata == n.metadata for n in items)


async def test_a_failed_update_changes_nothing(make, mode):
    api = make(mode, batch_size=4)
    await api.create_workspace("w")
    items = nodes(20)
    await api.insert(items, "w")
    fail_midway(api.store, "_upsert")
    with pytest.raises(RuntimeError, match="injected"):
        await api.update_metadata("w", {"category": "changed"}, filter_dict={"rank": {"lt": 15}})
    api.store.__dict__.pop("_upsert")
    stored = await everything(api, "w")
    assert all(stored[n.unique_id].metadata == n.metadata for n in items)
    assert await api.count("w", filter_dict={"category": "changed"}) == 0


def fail_midway(store, hook: str) -> None:
    """Make the store's ``hook`` fail on the write after its first one (on backends that write a
    call in one atomic step, on that step): the failure of a real backend partway through."""
    original = getattr(store, hook)
    calls = []

    async def failing(ws, arg):
        calls.append(1)
        chunked = await store._write_chunk() is not None
        if len(calls) == (2 if chunked else 1):  # once: putting things back must work
            raise RuntimeError("injected failure")
        return await original(ws, arg)

    setattr(store, hook, failing)


async def test_a_cancelled_update_is_all_or_nothing(make):
    api = make("async", batch_size=50)
    await api.create_workspace("w")
    rng = np.random.default_rng(3)
    await api.insert([VectorNode(unique_id=f"n{i}", content="c", metadata={"v": 0}, vector=rng.standard_normal(16).astype(np.float32)) for i in range(600)], "w")
    task = asyncio.ensure_future(api.update_metadata("w", {"v": 1}, filter_dict={"v": 0}))
    for _ in range(2000):  # cancel once the writes have started (some chunks may have landed)
        await asyncio.sleep(0.001)
        if task.done() or await api.count("w", filter_dict={"v": 1}) > 0:
            break
    task.cancel()
    try:
        assert await task == 600
    except asyncio.CancelledError:
        pass
    assert await api.count("w", filter_dict={"v": 1}) in (0, 600)
    assert await api.count("w") == 600
