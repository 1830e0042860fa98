"""A batch is checked column by column; what it accepts and the error it raises match a node-by-node check."""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import DimensionMismatchError, ValidationError, VectorNode
from vecbook.stores.engine.batch import validate_nodes


class Tag(str):
    pass


class Record(dict):
    pass


def node(unique_id="a", vector=(1.0, 2.0), metadata=None, content=""):
    # model_construct: what a caller holding arrays does, and the only way to hand in odd values
    return VectorNode.model_construct(unique_id=unique_id, content=content, metadata=metadata or {}, vector=vector)


def test_unusual_but_valid_inputs_become_a_float32_batch():
    nodes = [
        node("a", [1, 2], {"n": np.int64(3), "f": np.float32(1.5)}),
        node(Tag("b"), np.array([3.0, 4.0]), Record(x={"y": [1, {"z": 2}]})),
        node("c", None, {"big": 2**62, "none": None, "flag": True}),
        node("d", np.array([5, 6], np.float16)),
    ]
    checked = validate_nodes(nodes, None)
    assert checked.ids == ["a", "b", "c", "d"] and checked.dimensions == 2
    assert checked.metadatas[0] == {"n": 3, "f": 1.5} and type(checked.metadatas[0]["n"]) is int
    assert checked.metadatas[1] == {"x": {"y": [1, {"z": 2}]}} and type(checked.metadatas[1]) is dict
    assert checked.vectors[2] is None
    assert all(v.dtype == np.float32 for v in checked.vectors if v is not None)
    checked.vectors[2] = np.zeros(2, np.float32)  # as _prepare does after embedding
    batch = checked.to_batch(2)
    assert batch.vectors.dtype == np.float32 and batch.vectors.tolist() == [[1, 2], [3, 4], [0, 0], [5, 6]]


def test_metadata_is_copied_so_later_changes_to_the_node_do_not_reach_the_store():
    metadata = {"k": 1, "nested": {"x": 1}}
    flat = {"k": 1}
    checked = validate_nodes([node("a", metadata=metadata), node("b", metadata=flat)], 2)
    metadata["nested"]["x"] = 2
    flat["k"] = 2
    assert checked.metadatas == [{"k": 1, "nested": {"x": 1}}, {"k": 1}]


@pytest.mark.parametrize(
    "nodes, error, message",
    [
        ([node("a"), node("a")], ValidationError, "unique_id 'a' appears twice"),
        ([node("a"), node("")], ValidationError, "node #1"),
        ([node("a"), node("b\x00")], ValidationError, "no NUL character (node #1"),
        ([node("é" * 300)], ValidationError, "at most 512 bytes"),
        ([node("a"), node(5)], ValidationError, "got 5 (node #1"),
        ([node("a"), node("b", content=3)], ValidationError, "content must be a string (node #1"),
        ([node("a"), node("b", metadata=[1])], ValidationError, "metadata must be a dict"),
        ([node("a"), node("b", metadata={1: 2})], ValidationError, "non-string key 1"),
        ([node("a"), node("b", metadata={"x": 2**64})], ValidationError, "outside the int64 range"),
        ([node("a"), node("b", metadata={"x": float("nan")})], ValidationError, "must be finite"),
        ([node("a"), node("b", vector=np.array([np.inf, 1], np.float32))], ValidationError, "NaN or infinity (node #1"),
        ([node("a"), node("b", vector=np.array([1, 2, 3], np.float32))], DimensionMismatchError, "node #1"),
        ([node("a", vector=np.zeros((2, 2), np.float32))], ValidationError, "1-D"),
        ([node("a", vector=["x", "y"])], ValidationError, "sequence of numbers"),
        # The first problem in node order is the one named, whatever column it is in
        # (the finiteness of float32 vectors, checked for the batch at once, comes last).
        ([node("a", metadata={1: 2}), node("")], ValidationError, "non-string key 1"),
        ([node("a", vector=np.array([np.nan, 1], np.float32)), node("b", metadata={1: 2})], ValidationError, "non-string key 1"),
    ],
)
def test_the_first_bad_node_is_named(nodes, error, message):
    with pytest.raises(error) as info:
        validate_nodes(nodes, None)
    assert message in str(info.value)


def test_long_ids_within_the_byte_limit_are_accepted():
    assert validate_nodes([node("a" * 500)], 2).ids == ["a" * 500]
