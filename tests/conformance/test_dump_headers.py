"""Dumps that describe themselves: the header dump_workspace writes, the checks load_workspace
makes with it, and files without one (flowllm/ReMe dumps) loading as they are."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vecbook
from vecbook import (
    DumpFormatError,
    DumpMismatchError,
    HashEmbeddingModel,
    MemoryVectorStore,
    VectorNode,
)
from vecbook.dumps import read_header

from .dataset import nodes


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def dump_of_four(make, mode, tmp_path):
    """The dump (header included) of a workspace of four nodes, from a store with the suite's model (hash-16)."""
    source = make(mode)
    await source.create_workspace("src")
    await source.insert(nodes(4), "src")
    await source.dump_workspace("src", path=tmp_path)
    return tmp_path / "src.jsonl"


async def test_the_header_names_model_dimensions_distance_and_version(api, ws, tmp_path):
    await api.insert(nodes(3), ws)
    await api.dump_workspace(ws, path=tmp_path)
    header, *records = lines(tmp_path / f"{ws}.jsonl")
    assert header == {
        "vecbook_dump": {
            "format": 1,
            "vecbook_version": vecbook.__version__,
            "workspace_id": ws,
            "embedding_model": "hash-16",
            "dimensions": 16,
            "distance": "cosine",
        }
    }
    assert read_header(tmp_path / f"{ws}.jsonl") == header["vecbook_dump"]
    assert len(records) == 3 and all("unique_id" in r for r in records)


async def test_header_false_writes_the_guides_exact_format(api, ws, tmp_path):
    await api.insert(nodes(3), ws)
    assert (await api.dump_workspace(ws, path=tmp_path, header=False))["size"] == 3
    records = lines(tmp_path / f"{ws}.jsonl")
    assert len(records) == 3 and all(set(r) == {"unique_id", "workspace_id", "content", "metadata", "vector"} for r in records)
    assert read_header(tmp_path / f"{ws}.jsonl") is None


async def test_a_dump_with_a_header_round_trips_and_callbacks_never_see_the_header(api, ws, tmp_path):
    await api.insert(nodes(6), ws)
    assert (await api.dump_workspace(ws, path=tmp_path))["size"] == 6
    seen = []

    def rebuild(record):
        seen.append(record)
        return VectorNode(**record)

    assert (await api.load_workspace("copy", path=tmp_path / f"{ws}.jsonl", callback_fn=rebuild))["size"] == 6
    assert len(seen) == 6 and all("vecbook_dump" not in r for r in seen)
    assert sorted(n.unique_id for n in await api.nodes("copy")) == sorted(n.unique_id for n in nodes(6))


async def test_an_empty_workspace_dumps_a_header_and_loads_empty(api, ws, tmp_path):
    assert (await api.dump_workspace(ws, path=tmp_path))["size"] == 0
    assert (await api.load_workspace("again", path=tmp_path / f"{ws}.jsonl"))["size"] == 0
    assert await api.count("again") == 0


async def test_another_vector_length_is_a_typed_error_unless_overridden(make, mode, tmp_path):
    dump = await dump_of_four(make, mode, tmp_path)
    other = make(mode, embedding_model=HashEmbeddingModel(dimensions=32))
    with pytest.raises(DumpMismatchError, match=r"16 dimensions.*makes 32.*check_header=False") as info:
        await other.load_workspace("dst", path=dump)
    assert isinstance(info.value, DumpFormatError) and str(dump) in str(info.value)
    assert not await other.exist_workspace("dst")  # nothing written
    assert (await other.load_workspace("dst", path=dump, check_header=False))["size"] == 4


async def test_another_model_of_the_same_length_is_a_typed_error_unless_overridden(make, mode, tmp_path):
    dump = await dump_of_four(make, mode, tmp_path)
    renamed = HashEmbeddingModel(dimensions=16)
    renamed.model_name = "text-embedding-3-small"
    other = make(mode, embedding_model=renamed)
    await other.create_workspace("dst")
    await other.insert(VectorNode(unique_id="keep", content="k", vector=np.ones(16)), "dst")
    with pytest.raises(DumpMismatchError, match=r"'hash-16'.*'text-embedding-3-small'"):
        await other.load_workspace("dst", path=dump)
    assert [n.unique_id for n in await other.nodes("dst")] == ["keep"]
    assert (await other.load_workspace("dst", path=dump, check_header=False))["size"] == 4


async def test_a_store_without_a_model_loads_any_header(make, mode, tmp_path):
    dump = await dump_of_four(make, mode, tmp_path)
    bare = make(mode, embedding_model=None)
    assert (await bare.load_workspace("dst", path=dump))["size"] == 4
    await bare.dump_workspace("dst", path=tmp_path / "bare")
    assert read_header(tmp_path / "bare" / "dst.jsonl")["embedding_model"] is None


async def test_files_without_a_header_load_as_they_are(api, tmp_path, model):
    flowllm = [
        {"unique_id": "f1", "workspace_id": "old", "content": "hello", "metadata": {"vecbook_dump": 1}, "vector": [0.5] * 16},
        {"unique_id": "f2", "workspace_id": "old", "content": "world", "metadata": {}, "vector": [0.25] * 32},  # another length: refused as ever
    ]
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(flowllm[0]) + "\n")
    assert read_header(path) is None
    assert (await api.load_workspace("old", path=path))["size"] == 1
    (got,) = await api.get("f1", "old")
    assert got.metadata == {"vecbook_dump": 1}
    path.write_text("\n".join(json.dumps(r) for r in flowllm) + "\n")
    with pytest.raises(vecbook.ValidationError):
        await api.load_workspace("old", path=path)


async def test_the_header_never_holds_a_key_or_url_of_the_model(make, mode, tmp_path):
    pytest.importorskip("openai")
    from vecbook import OpenAICompatibleEmbeddingModel

    secret_model = OpenAICompatibleEmbeddingModel(
        model_name="my-embedder", dimensions=16, api_key="sk-TOPSECRET-123", base_url="http://user:hunter2@127.0.0.1:9/v1"
    )
    api = make(mode, embedding_model=secret_model)
    await api.create_workspace("w")
    await api.insert(nodes(2), "w")  # with vectors: the model is never called
    await api.dump_workspace("w", path=tmp_path)
    text = (tmp_path / "w.jsonl").read_text()
    assert "TOPSECRET" not in text and "hunter2" not in text and "127.0.0.1" not in text
    assert read_header(tmp_path / "w.jsonl")["embedding_model"] == "my-embedder"
    other = MemoryVectorStore(embedding_model=secret_model)
    assert other.load_workspace("w", path=tmp_path)["size"] == 2
