"""Search: scores, distances, batch search and every filter form, identical on every backend."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from tests.oracle import matches
from vecbook import DimensionMismatchError, FilterError, ValidationError, VectorNode

from .dataset import BAD_FILTERS, FILTERS, nodes


def pickle_round_trip(node: VectorNode) -> VectorNode:
    return pickle.loads(pickle.dumps(node))


@pytest.fixture
async def data(api, ws):
    items = nodes()
    await api.insert(items, ws)
    return items


def expected_scores(query: np.ndarray, items: list[VectorNode], distance: str) -> dict[str, float]:
    q = query.astype(np.float64)
    out = {}
    for n in items:
        x = n.vector.astype(np.float64)
        if distance == "cosine":
            out[n.unique_id] = float(x @ q / (np.linalg.norm(x) * np.linalg.norm(q)))
        elif distance == "dot":
            out[n.unique_id] = float(x @ q)
        else:
            out[n.unique_id] = -float(np.linalg.norm(x - q))
    return out


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclidean"])
async def test_scores_follow_the_distance(make, mode, distance):
    api = make(mode, distance=distance)
    await api.create_workspace("w")
    items = nodes()
    await api.insert(items, "w")
    query = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    results = await api.search_by_vector(query, "w", top_k=10)
    truth = expected_scores(query, items, distance)
    best = sorted(truth, key=truth.get, reverse=True)[:10]
    assert [r.unique_id for r in results] == best
    for r in results:
        assert r.metadata["score"] == pytest.approx(truth[r.unique_id], abs=1e-6)
        assert r.score == r.metadata["score"]
    if distance == "cosine":
        assert all(-1.0 <= r.score <= 1.0 for r in results)


async def test_text_search_embeds_the_query(api, ws, model):
    await api.insert([VectorNode(unique_id="fruit", content="apple banana cherry"), VectorNode(unique_id="car", content="engine wheel brake")], ws)
    (top,) = await api.search("banana apple", ws, top_k=1)
    assert top.unique_id == "fruit"
    assert top.score > 0.5


async def test_top_k_bounds(api, ws, data):
    q = np.ones(16, dtype=np.float32)
    assert len(await api.search_by_vector(q, ws, top_k=1)) == 1
    assert len(await api.search_by_vector(q, ws, top_k=1000)) == len(data)
    assert await api.search_by_vector(q, ws, top_k=0) == []
    with pytest.raises(ValidationError):
        await api.search_by_vector(q, ws, top_k=-1)


async def test_search_empty_workspace(api, ws):
    assert await api.search("anything", ws, top_k=5) == []


async def test_query_dimension_is_checked(api, ws, data):
    with pytest.raises(DimensionMismatchError):
        await api.search_by_vector(np.ones(3), ws)


async def test_query_dimension_is_checked_before_the_first_insert(api):
    await api.create_workspace("sized", dimensions=16)
    with pytest.raises(DimensionMismatchError):
        await api.search_by_vector(np.ones(3), "sized")
    assert await api.search_by_vector(np.ones(16), "sized", top_k=3) == []


async def test_changing_a_result_does_not_change_the_store(api, ws):
    await api.insert(VectorNode(unique_id="a", content="x", metadata={"tags": ["red"], "deep": {"k": 1}}, vector=np.ones(16)), ws)
    (hit,) = await api.search_by_vector(np.ones(16), ws)
    hit.metadata["tags"].append("blue")
    hit.metadata["deep"]["k"] = 2
    hit.metadata["new"] = True
    hit.vector[:] = 0
    (again,) = await api.search_by_vector(np.ones(16), ws)
    assert {k: v for k, v in again.metadata.items() if k != "score"} == {"tags": ["red"], "deep": {"k": 1}}
    assert again.score == pytest.approx(1.0) and (again.vector == 1).all()


async def test_user_score_in_metadata_is_never_overwritten(api, ws):
    await api.insert(VectorNode(unique_id="a", content="x", metadata={"score": "five stars"}, vector=np.ones(16)), ws)
    (hit,) = await api.search_by_vector(np.ones(16), ws)
    assert hit.metadata["score"] == pytest.approx(1.0)
    await api.insert(hit, ws)  # writing a search result back keeps the user's value
    (stored,) = await api.get("a", ws)
    assert stored.metadata["score"] == "five stars"


@pytest.mark.parametrize("copy_of", [pickle_round_trip, copy.deepcopy, copy.copy], ids=["pickled", "deepcopy", "copy"])
async def test_a_copied_search_result_written_back_stores_the_metadata_it_had(api, ws, copy_of):
    """A result pickled (to another process, a cache) or copied is still a result: written back, the
    search's score is not stored, and a user's own ``score`` is kept."""
    await api.insert([VectorNode(unique_id="a", content="x", metadata={"k": 1}, vector=np.ones(16)),
                      VectorNode(unique_id="b", content="y", metadata={"score": "five stars"}, vector=-np.ones(16))], ws)
    hits = [copy_of(hit) for hit in await api.search_by_vector(np.ones(16), ws, top_k=2)]
    assert [hit.score for hit in hits] == [pytest.approx(1.0), pytest.approx(-1.0)]
    await api.insert(hits, ws)
    stored = {node.unique_id: node.metadata for node in await api.get(["a", "b"], ws)}
    assert stored == {"a": {"k": 1}, "b": {"score": "five stars"}}


async def test_batch_search_equals_single_searches(api, ws, data):
    queries = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    batch = await api.batch_search(queries, ws, top_k=5, filter_dict={"flag": False})
    for q, results in zip(queries, batch):
        single = await api.search_by_vector(q, ws, top_k=5, filter_dict={"flag": False})
        assert [r.unique_id for r in results] == [r.unique_id for r in single]
    texts = await api.batch_search(["document 1", "document 2"], ws, top_k=3)
    assert len(texts) == 2 and all(len(t) == 3 for t in texts)


@pytest.mark.parametrize("filter_dict", FILTERS, ids=repr)
async def test_filters_match_the_reference_semantics(api, ws, data, filter_dict):
    expected = {n.unique_id for n in data if matches(n.metadata, filter_dict)}
    results = await api.search_by_vector(np.ones(16), ws, top_k=len(data), filter_dict=filter_dict)
    assert {r.unique_id for r in results} == expected
    listed = await api.nodes(ws, filter_dict=filter_dict)
    assert {n.unique_id for n in listed} == expected


async def test_filtered_top_k_is_the_best_of_the_matches(api, ws, data):
    query = np.random.default_rng(5).standard_normal(16).astype(np.float32)
    flt = {"category": {"in": ["AI", "tech"]}}
    truth = expected_scores(query, [n for n in data if matches(n.metadata, flt)], "cosine")
    results = await api.search_by_vector(query, ws, top_k=3, filter_dict=flt)
    assert [r.unique_id for r in results] == sorted(truth, key=truth.get, reverse=True)[:3]


@pytest.mark.parametrize("bad", BAD_FILTERS, ids=repr)
async def test_bad_filters_raise_filter_error(api, ws, data, bad):
    with pytest.raises(FilterError):
        await api.search_by_vector(np.ones(16), ws, top_k=3, filter_dict=bad)
