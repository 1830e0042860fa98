"""Dump, load and copy: exact round trips, atomic files, flowllm compatibility, nothing half-loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vecbook import DumpFormatError, DumpNotFoundError, MemoryVectorStore, VectorNode

from .dataset import nodes


def by_id(items):
    return {n.unique_id: n for n in items}


async def test_dump_writes_one_node_per_line(api, ws, tmp_path):
    items = nodes(12)
    await api.insert(items, ws)
    result = await api.dump_workspace(ws, path=tmp_path / "dump")
    assert result["size"] == 12
    lines = (tmp_path / "dump" / f"{ws}.jsonl").read_text().splitlines()
    assert len(lines) == 13  # a header line (tests/conformance/test_dump_headers.py), then the nodes
    assert list(json.loads(lines[0])) == ["vecbook_dump"]
    record = json.loads(lines[1])
    assert set(record) == {"unique_id", "workspace_id", "content", "metadata", "vector"}
    assert not list((tmp_path / "dump").glob(".*.tmp"))


async def test_dump_load_roundtrip_is_exact(api, ws, tmp_path, model):
    items = nodes(30)
    await api.insert(items, ws)
    await api.dump_workspace(ws, path=tmp_path)
    (tmp_path / f"{ws}.jsonl").rename(tmp_path / "copy.jsonl")
    assert (await api.load_workspace("copy", path=tmp_path))["size"] == 30
    loaded = by_id(await api.nodes("copy"))
    for original in items:
        got = loaded[original.unique_id]
        assert got.content == original.content and got.metadata == original.metadata
        assert got.vector.tobytes() == original.vector.tobytes()
    assert model.embedded == []  # vectors came from the file


async def test_migration_to_another_backend(api, ws, tmp_path):
    items = nodes(20)
    await api.insert(items, ws)
    await api.dump_workspace(ws, path=tmp_path)
    other = MemoryVectorStore()
    other.load_workspace(ws, path=tmp_path)
    for original in items:
        (got,) = other.get(original.unique_id, ws)
        assert got.vector.tobytes() == original.vector.tobytes() and got.metadata == original.metadata


async def test_load_replace_and_merge(api, ws, tmp_path):
    await api.insert([VectorNode(unique_id=f"old{i}", content="o", vector=np.ones(16)) for i in range(3)], ws)
    fresh = [VectorNode(unique_id=f"new{i}", content="n", vector=np.full(16, i + 1.0)) for i in range(2)]
    await api.load_workspace(ws, nodes=fresh, mode="merge")
    assert await api.count(ws) == 5
    await api.load_workspace(ws, nodes=fresh)  # replace is the default, as in flowllm
    assert sorted(n.unique_id for n in await api.nodes(ws)) == ["new0", "new1"]


async def test_load_without_a_dump_keeps_data(api, ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a server backend's default dump folder is the current one
    await api.insert(VectorNode(unique_id="a", content="x", vector=np.ones(16)), ws)
    with pytest.raises(DumpNotFoundError, match=r"ws\.jsonl"):
        await api.load_workspace(ws)  # the store's dump folder holds no dump of it
    with pytest.raises(DumpNotFoundError):
        await api.load_workspace(ws, path="/nonexistent-dir")
    assert await api.count(ws) == 1


async def test_dump_and_load_without_a_path_round_trip(api, ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a server backend's default dump folder is the current one
    await api.insert(nodes(7), ws)
    written = await api.dump_workspace(ws)
    await api.delete([f"d{i:03d}" for i in range(3)], ws)
    assert (await api.load_workspace(ws))["size"] == 7
    assert await api.count(ws) == 7 and Path(written["path"]).is_file()


async def test_guide_import_export_example_loads_under_a_new_name(api, tmp_path):
    # The guide: dump "my_workspace" to ./backup_data, then load "new_workspace" from that folder.
    await api.create_workspace("my_workspace")
    await api.insert(nodes(12), "my_workspace")
    await api.dump_workspace(workspace_id="my_workspace", path=tmp_path / "backup_data")
    assert (await api.load_workspace(workspace_id="new_workspace", path=tmp_path / "backup_data"))["size"] == 12
    assert sorted(n.unique_id for n in await api.nodes("new_workspace")) == sorted(n.unique_id for n in nodes(12))


async def test_load_path_may_name_the_file_and_several_dumps_are_listed(api, ws, tmp_path):
    await api.insert(nodes(4), ws)
    await api.dump_workspace(ws, path=tmp_path)
    await api.create_workspace("other")
    await api.insert(nodes(2), "other")
    await api.dump_workspace("other", path=tmp_path)
    with pytest.raises(DumpNotFoundError, match=r"2 dumps.*other\.jsonl.*ws\.jsonl"):
        await api.load_workspace("third", path=tmp_path)
    assert not await api.exist_workspace("third")
    assert (await api.load_workspace("third", path=tmp_path / "other.jsonl"))["size"] == 2


@pytest.mark.parametrize(
    "corrupt, line",
    [
        (lambda text: text[: len(text) // 2], None),  # truncated mid-record
        (lambda text: text.replace("\n", "\n{not json\n", 1), 2),
        (lambda text: text + '{"unique_id": "z", "vector": "abc"}\n', 12),  # a header line and 10 nodes before it
        (lambda text: text + "[1, 2]\n", 12),
    ],
)
async def test_corrupt_dump_names_the_line_and_writes_nothing(api, ws, tmp_path, corrupt, line):
    await api.insert(nodes(10), ws)
    await api.dump_workspace(ws, path=tmp_path)
    dump = tmp_path / f"{ws}.jsonl"
    dump.write_text(corrupt(dump.read_text()))
    await api.create_workspace("target")
    await api.insert(VectorNode(unique_id="keep", content="k", vector=np.ones(16)), "target")
    dump.rename(tmp_path / "target.jsonl")
    with pytest.raises(DumpFormatError, match=r"line \d+") as info:
        await api.load_workspace("target", path=tmp_path)
    if line is not None:
        assert f"line {line}" in str(info.value)
    assert [n.unique_id for n in await api.nodes("target")] == ["keep"]


async def test_flowllm_dump_loads_as_is(api, tmp_path, model):
    # The format written by flowllm's stores: model_dump() per line, Python floats, extra keys possible.
    lines = [
        {"unique_id": "f1", "workspace_id": "old", "content": "hello", "metadata": {"a": 1}, "vector": [0.25] * 16},
        {"unique_id": "f2", "workspace_id": "old", "content": "world", "metadata": {}, "vector": None, "extra": "ignored"},
    ]
    (tmp_path / "old.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert (await api.load_workspace("old", path=tmp_path))["size"] == 2
    got = by_id(await api.nodes("old"))
    assert got["f1"].vector.tolist() == [0.25] * 16
    assert got["f2"].vector is not None and model.embedded == ["world"]


async def test_callbacks_on_dump_and_load(api, ws, tmp_path):
    await api.insert(nodes(5), ws)
    await api.dump_workspace(ws, path=tmp_path, callback_fn=lambda n: {"id": n.unique_id, "text": n.content, "v": n.vector.tolist()})
    (tmp_path / f"{ws}.jsonl").rename(tmp_path / "cb.jsonl")
    await api.load_workspace("cb", path=tmp_path, callback_fn=lambda d: VectorNode(unique_id=d["id"], content=d["text"].upper(), vector=d["v"]))
    assert sorted(n.content for n in await api.nodes("cb")) == [f"DOCUMENT {i}" for i in range(5)]


async def test_copy_workspace_copies_vectors(api, ws, model):
    items = nodes(25)
    await api.insert(items, ws)
    assert (await api.copy_workspace(ws, "dest"))["size"] == 25
    copied = by_id(await api.nodes("dest"))
    assert all(copied[n.unique_id].vector.tobytes() == n.vector.tobytes() for n in items)
    assert all(n.workspace_id == "dest" for n in copied.values())
    assert model.embedded == []
    assert await api.count(ws) == 25
