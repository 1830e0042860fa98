"""Workspace rules: explicit creation, idempotent create/delete, safe ids."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vecbook import InvalidWorkspaceIdError, VectorNode, WorkspaceNotFoundError

UNSAFE_IDS = ["../x", "/etc", "a/b", "..", ".", "", "con", "CON.txt", "x" * 129, "x" * 10_000, "a\nb", "a\x00b", "a\\b", " ws", "ws ", "-x", "é", "a:b", None, 5]


async def test_create_list_exists_delete(api):
    assert await api.list_workspaces() == []
    assert await api.create_workspace("b") is True
    assert await api.create_workspace("a") is True
    assert await api.list_workspaces() == ["a", "b"]
    assert await api.exist_workspace("a") and not await api.exist_workspace("c")
    assert await api.delete_workspace("a") is True
    assert await api.list_workspaces() == ["b"]
    assert await api.delete_workspace("a") is False  # missing: not an error


async def test_create_existing_keeps_nodes(api, ws):
    await api.insert(VectorNode(unique_id="n1", content="kept"), ws)
    assert await api.create_workspace(ws) is False
    assert await api.count(ws) == 1


async def test_delete_then_recreate_is_empty(api, ws):
    await api.insert(VectorNode(unique_id="n1", content="old"), ws)
    await api.delete_workspace(ws)
    await api.create_workspace(ws)
    assert await api.count(ws) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.search("q", "missing"),
        lambda api: api.search_by_vector([0.1] * 16, "missing"),
        lambda api: api.insert(VectorNode(content="x"), "missing"),
        lambda api: api.delete("id", "missing"),
        lambda api: api.get("id", "missing"),
        lambda api: api.count("missing"),
        lambda api: api.dump_workspace("missing", path="dumps"),
        lambda api: api.copy_workspace("missing", "dest"),
        lambda api: api.nodes("missing"),
    ],
)
async def test_missing_workspace_is_never_created(api, call, tmp_path):
    with pytest.raises(WorkspaceNotFoundError) as info:
        await call(api)
    assert "missing" in str(info.value)
    assert isinstance(info.value, KeyError)
    assert await api.list_workspaces() == []


@pytest.mark.parametrize("bad", UNSAFE_IDS, ids=repr)
async def test_unsafe_workspace_ids_are_rejected(api, bad, tmp_path):
    before = sorted(os.listdir(tmp_path))
    for call in (
        lambda: api.create_workspace(bad),
        lambda: api.exist_workspace(bad),
        lambda: api.insert(VectorNode(content="x", vector=np.ones(16)), bad),
        lambda: api.search("q", bad),
        lambda: api.load_workspace(bad, nodes=[VectorNode(content="x", vector=np.ones(16))]),
        lambda: api.delete_workspace(bad),
    ):
        with pytest.raises(InvalidWorkspaceIdError):
            await call()
    assert await api.list_workspaces() == []
    assert sorted(os.listdir(tmp_path)) == before or sorted(os.listdir(tmp_path)) == sorted({*before, "local", "memory"})


async def test_dots_dashes_underscores_are_fine(api):
    for name in ("my_ws", "a.b-c", "_x", "A1"):
        await api.create_workspace(name)
        await api.insert(VectorNode(unique_id="n", content=name), name)
    assert await api.list_workspaces() == sorted(["my_ws", "a.b-c", "_x", "A1"])
