"""Bad input, fuzzed: every call either works or raises a VecbookError, and a failed call changes nothing.

Example counts scale with VECBOOK_FUZZ_SCALE (default 0.5 → 5,000 generated cases each
for memory and local, 10,000 in all; the server backends run a tenth of that).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backends import make_store, variants
from tests.oracle import matches
from tests.unit.test_filters import filters as random_filters
from tests.unit.test_filters import metadata as random_metadata
from vecbook import HashEmbeddingModel, VecbookError, VectorNode

SCALE = float(os.environ.get("VECBOOK_FUZZ_SCALE", "0.5"))
FAST = {"memory", "local"}
DIMS = 8


@pytest.fixture(params=list(variants()))
def backend(request):
    return request.param


@pytest.fixture
def store(backend, tmp_path, request):
    """One store per test: hypothesis runs all of a test's examples against it."""
    s = make_store(backend, tmp_path, request, embedding_model=HashEmbeddingModel(DIMS))
    s.create_workspace("ws")
    s.insert([VectorNode(unique_id=f"seed{i}", content=f"seed {i}", metadata={"i": i, "tag": ["a", "b"][i % 2]}) for i in range(5)], "ws")
    yield s
    s.close()


def examples(backend: str, count: int) -> settings:
    n = int(count * SCALE * (1 if backend in FAST else 0.1))
    return settings(max_examples=max(n, 10), deadline=None, suppress_health_check=list(HealthCheck), database=None)


def snapshot(store) -> dict:
    return {n.unique_id: (n.content, n.metadata, n.vector.tobytes()) for n in store.iter_workspace_nodes("ws")}


def attempt(store, call) -> tuple[bool, object]:
    """(True, result) if the call worked; (False, None) if it raised a VecbookError and changed nothing."""
    before = snapshot(store)
    try:
        return True, call()
    except VecbookError:
        assert snapshot(store) == before, "a failed call changed the workspace"
        return False, None


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
anything = st.recursive(
    st.one_of(json_leaf, st.binary(max_size=4), st.sampled_from([object(), {1, 2}, (1, 2), b"x", np.float32(1.5), np.int64(3), 1j])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=5), st.integers(), st.none()), inner, max_size=3)),
    max_leaves=8,
)
filter_values = st.recursive(
    st.one_of(json_leaf, st.lists(json_leaf, max_size=3)),
    lambda inner: st.dictionaries(st.sampled_from(["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists", "$gte", "bogus", "$and", "$or", "$not", "i", "tag", "a.b", ""]), inner, max_size=3),
    max_leaves=8,
)
filters = st.one_of(
    st.none(),
    anything,
    st.dictionaries(st.sampled_from(["i", "tag", "$and", "$or", "$not", "nested.x", "a..b", "", "$xor"]), st.one_of(filter_values, st.lists(filter_values, max_size=3)), max_size=3),
)
vectors = st.one_of(
    st.none(),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=10),
    st.lists(st.floats(-10, 10, width=32), min_size=DIMS, max_size=DIMS),
    st.sampled_from([np.ones((2, DIMS)), "not a vector", [["x"] * DIMS], np.full(DIMS, np.nan)]),
)
ids = st.one_of(st.text(max_size=20), st.text(min_size=600, max_size=700), st.just(""), st.sampled_from(["a\x00b", "seed1", "seed2", "\n"]))


def test_fuzz_filters(store, backend):
    @examples(backend, 3000)
    @given(filters)
    def run(flt):
        ok, results = attempt(store, lambda: store.search_by_vector(np.ones(DIMS), "ws", top_k=5, filter_dict=flt))
        if ok:
            assert all(isinstance(r, VectorNode) and "score" in r.metadata for r in results)

    run()


def test_fuzz_node_ids(store, backend):
    @examples(backend, 1500)
    @given(st.lists(ids, min_size=1, max_size=3))
    def run(node_ids):
        nodes = [VectorNode.model_construct(unique_id=i, workspace_id="ws", content="x", metadata={}, vector=np.ones(DIMS, dtype=np.float32)) for i in node_ids]
        inserted, _ = attempt(store, lambda: store.insert(nodes, "ws"))
        found_ok, found = attempt(store, lambda: store.get(node_ids, "ws"))
        valid = all(i and "\x00" not in i and len(i.encode("utf-8", "surrogatepass")) <= 512 for i in node_ids)
        assert found_ok == valid
        assert inserted == (valid and len(set(node_ids)) == len(node_ids))  # a repeated id refuses the batch
        if inserted:
            assert {n.unique_id for n in found} == set(node_ids)
            store.delete([i for i in node_ids if not i.startswith("seed")], "ws")
            store.insert([VectorNode(unique_id=f"seed{i}", content=f"seed {i}", metadata={"i": i, "tag": ["a", "b"][i % 2]}) for i in range(5)], "ws")

    run()


def test_fuzz_workspace_ids(store, backend, tmp_path_factory):
    @examples(backend, 1500)
    @given(st.one_of(st.text(max_size=140), st.sampled_from(["../x", "/etc", "a/b", "..", "con", "", "x" * 10_000, "a\x01b"])))
    def run(workspace_id):
        before = store.list_workspaces()
        ok, created = attempt(store, lambda: store.create_workspace(workspace_id))
        if ok and created:
            assert workspace_id in store.list_workspaces()
            store.delete_workspace(workspace_id)
        assert store.list_workspaces() == before

    run()


def test_fuzz_metadata(store, backend):
    @examples(backend, 2500)
    @given(anything)
    def run(metadata):
        node = VectorNode.model_construct(unique_id="fuzz-md", workspace_id="ws", content="x", metadata=metadata, vector=np.ones(DIMS, dtype=np.float32))
        ok, _ = attempt(store, lambda: store.insert(node, "ws"))
        if ok:
            (got,) = store.get("fuzz-md", "ws")
            expected = {} if metadata is None else metadata  # None means "no metadata"
            assert isinstance(expected, dict), "a non-dict metadata was accepted"
            assert got.metadata == expected or _equal_json(got.metadata, expected)
            store.delete("fuzz-md", "ws")

    run()


def test_fuzz_vectors(store, backend):
    @examples(backend, 1500)
    @given(vectors, st.sampled_from(["insert", "search"]))
    def run(vector, op):
        if op == "search":
            attempt(store, lambda: store.search_by_vector(vector, "ws", top_k=3))
            return
        node = VectorNode.model_construct(unique_id="fuzz-vec", workspace_id="ws", content="text to embed", metadata={}, vector=vector)
        ok, _ = attempt(store, lambda: store.insert(node, "ws"))
        if ok:
            assert store.get("fuzz-vec", "ws")
            store.delete("fuzz-vec", "ws")

    run()


def _equal_json(a, b) -> bool:
    if isinstance(b, tuple):
        b = list(b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal_json(a[k], b[k]) for k in a)
    return a == b


def test_random_filters_on_random_metadata_match_the_oracle(store, backend):
    """Every backend's filtering (native, translated or post-filtered) agrees with the reference semantics."""

    @examples(backend, 600)
    @given(st.lists(random_metadata(), min_size=1, max_size=12), random_filters)
    def run(metadatas, spec):
        store.delete_workspace("p")
        store.create_workspace("p", dimensions=4)
        store.insert([VectorNode(unique_id=str(i), content="", metadata=md, vector=[1.0, i, 0.5, -1.0]) for i, md in enumerate(metadatas)], "p")
        expected = {str(i) for i, md in enumerate(metadatas) if matches(md, spec)}
        assert {n.unique_id for n in store.iter_workspace_nodes("p", filter_dict=spec, page_size=5)} == expected, spec
        hits = store.search_by_vector([1.0, 0, 0, 0], "p", top_k=len(metadatas), filter_dict=spec)
        assert {n.unique_id for n in hits} == expected, spec

    run()
