"""VectorNode's reprs and conversions; backends by name."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import vecbook
from vecbook import MissingDependencyError, ValidationError, VectorNode, create_vector_store


def test_repr_never_prints_a_whole_vector():
    node = VectorNode(unique_id="a", content="x" * 500, vector=np.arange(384, dtype=np.float32) + 0.123)
    text = repr(node)
    assert "384-d float32" in text and len(text) < 400
    assert "383.1" not in text
    html = node._repr_html_()
    assert "<table" in html and "383.1" not in html


def test_vector_is_float32_and_json_dump_is_a_list():
    node = VectorNode(content="c", vector=[1, 2, 3])
    assert node.vector.dtype == np.float32
    dumped = json.loads(node.model_dump_json())
    assert dumped["vector"] == [1.0, 2.0, 3.0] and len(dumped["unique_id"]) == 32
    with pytest.raises(ValueError):
        VectorNode(vector=[[1, 2], [3, 4]])


def test_nodes_compare_by_value():
    a = VectorNode(unique_id="x", content="c", vector=[1, 2])
    assert a == VectorNode(unique_id="x", content="c", vector=np.array([1, 2], dtype=np.float32))
    assert a != VectorNode(unique_id="x", content="c", vector=[1, 3])


def test_create_by_name(tmp_path):
    assert isinstance(create_vector_store("memory"), vecbook.MemoryVectorStore)
    store = create_vector_store("local", store_dir=tmp_path)
    assert isinstance(store, vecbook.LocalVectorStore) and store.store_dir == str(tmp_path)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValidationError, match="memory, local, chroma, qdrant, elasticsearch"):
        create_vector_store("milvus")


@pytest.mark.parametrize("backend, module, extra", [("chroma", "chromadb", "chroma"), ("qdrant", "qdrant_client", "qdrant"), ("elasticsearch", "elasticsearch", "elasticsearch")])
def test_missing_extra_names_the_pip_command(monkeypatch, backend, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if not installed
    with pytest.raises(MissingDependencyError, match=rf"pip install 'vecbook\[{extra}\]'") as info:
        create_vector_store(backend)
    assert isinstance(info.value, ImportError)


def test_unknown_constructor_argument_is_an_error():
    with pytest.raises(TypeError, match="storedir"):
        vecbook.MemoryVectorStore(storedir="x")


@pytest.mark.parametrize(
    "metadata, vector, message",
    [
        ({"a": {"b": [1, float("nan")]}}, [1.0, 2.0], "metadata (node #1, unique_id='bad')['a']['b'][1] is nan"),
        ({"a": {1: "x"}}, [1.0, 2.0], "metadata (node #1, unique_id='bad')['a'] has a non-string key 1"),
        ({"when": object()}, [1.0, 2.0], "metadata (node #1, unique_id='bad')['when'] is a object"),
        ({}, np.array([1.0, np.inf], dtype=np.float32), "vector contains NaN or infinity (node #1, unique_id='bad')"),
        ({}, [1.0, 2.0, 3.0], "unique_id='bad'"),
    ],
)
def test_validation_errors_name_the_node_and_the_place(metadata, vector, message):
    from vecbook import MemoryVectorStore, ValidationError

    store = MemoryVectorStore()
    store.create_workspace("w")
    good = VectorNode(unique_id="good", vector=[0.0, 1.0])
    bad = VectorNode.model_construct(unique_id="bad", workspace_id="", content="", metadata=metadata, vector=np.asarray(vector, dtype=np.float32))
    with pytest.raises(ValidationError) as caught:
        store.insert([good, bad], "w")
    assert message in str(caught.value)
    assert store.count("w") == 0
