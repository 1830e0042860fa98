"""Metadata introspection, identical on every backend: counts with filters, the fields with their
types and counts, distinct values with counts (paged), min/max of a field."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import matches
from vecbook import FieldRange, ValidationError, VectorNode, WorkspaceNotFoundError

from .dataset import FILTERS, metadata, nodes

BIG = 2**53

DATA = {
    "a": {"kind": "book", "year": 2019, "score_x": 0.5, "tags": ["x", "y"], "author": {"name": "Ann", "age": 40}, "day": "2024-03-01"},
    "b": {"kind": "book", "year": 2021, "score_x": 1, "tags": ["y"], "author": {"name": "Bob"}, "day": "2024-01-15T10:00:00Z"},
    "c": {"kind": "film", "year": 2021.0, "score_x": 2.5, "tags": "x", "author": {"name": "Ann"}, "day": "2023-12-31"},
    "d": {"kind": "book", "year": None, "tags": [], "flag": True, "day": "2024-02"},
    "e": {"kind": "song", "flag": False, "big": BIG, "mixed": "1", "day": "2024-03-01"},
    "f": {"kind": "film", "flag": 1, "big": BIG + 1, "mixed": 1, "tags": ["y", "y"]},
    "g": {"file.name": "x.txt", "nested": {"deep": {"v": 1}}},
}


async def insert(api, ws, data: dict[str, dict] = DATA) -> None:
    vectors = np.random.default_rng(5).standard_normal((len(data), 16)).astype(np.float32)
    await api.insert([VectorNode(unique_id=k, content=k, metadata=md, vector=v) for (k, md), v in zip(data.items(), vectors)], ws)


def pairs(values) -> list[tuple]:
    return [(v.value, v.count) for v in values]


# ---- count ------------------------------------------------------------------------------------


async def test_count_with_a_filter_counts_what_the_filter_matches(api, ws):
    items = nodes(40)
    await api.insert(items, ws)
    assert await api.count(ws) == 40  # the guide's count(workspace_id) is unchanged
    for filter_dict in FILTERS:
        expected = sum(matches(n.metadata, filter_dict) for n in items)
        assert await api.count(ws, filter_dict=filter_dict) == expected, filter_dict
        assert await api.count(ws, filter_dict) == expected, filter_dict


async def test_count_of_an_empty_or_missing_workspace(api, ws):
    assert await api.count(ws, filter_dict={"a": 1}) == 0
    with pytest.raises(WorkspaceNotFoundError):
        await api.count("nope", filter_dict={"a": 1})


# ---- fields ------------------------------------------------------------------------------------


async def test_metadata_fields_name_paths_types_and_counts(api, ws):
    await insert(api, ws)
    fields = {f.path: (f.types, f.count) for f in await api.metadata_fields(ws)}
    assert fields == {
        ("kind",): (("string",), 6),
        ("year",): (("float", "integer"), 3),  # d's None is no value
        ("score_x",): (("float", "integer"), 3),
        ("tags",): (("list", "string"), 4),  # d's [] is no value
        ("author", "name"): (("string",), 3),
        ("author", "age"): (("integer",), 1),
        ("day",): (("string",), 5),
        ("flag",): (("boolean", "integer"), 3),
        ("big",): (("integer",), 2),
        ("mixed",): (("integer", "string"), 2),
        ("file.name",): (("string",), 1),
        ("nested", "deep", "v"): (("integer",), 1),
    }
    keys = {f.path: f.key for f in await api.metadata_fields(ws)}
    assert keys[("file.name",)] == "file\\.name" and keys[("author", "name")] == "author.name"


async def test_metadata_field_counts_are_what_exists_filters_count(api, ws):
    items = nodes(40)
    await api.insert(items, ws)
    fields = await api.metadata_fields(ws)
    assert {f.path[0] for f in fields} >= {"category", "rank", "tags", "nested", "nulls"}
    assert all(f.path[0] not in ("optional", "empty_list") for f in fields)  # only nulls and [] there
    for f in fields:
        assert f.count == await api.count(ws, filter_dict={f.key: {"exists": True}}) > 0, f


async def test_metadata_fields_with_a_filter_and_on_an_empty_workspace(api, ws):
    assert await api.metadata_fields(ws) == []
    await insert(api, ws)
    films = {f.path: f.count for f in await api.metadata_fields(ws, filter_dict={"kind": "film"})}
    assert films == {("kind",): 2, ("year",): 1, ("score_x",): 1, ("tags",): 2, ("author", "name"): 1, ("day",): 1, ("flag",): 1, ("big",): 1, ("mixed",): 1}
    assert await api.metadata_fields(ws, filter_dict={"kind": "nothing"}) == []


# ---- distinct values ------------------------------------------------------------------------


async def test_distinct_values_most_frequent_first_with_counts(api, ws):
    await insert(api, ws)
    assert pairs(await api.distinct_values(ws, "kind")) == [("book", 3), ("film", 2), ("song", 1)]
    assert pairs(await api.distinct_values(ws, "tags")) == [("y", 3), ("x", 2)]  # f's ["y", "y"] counts once
    assert pairs(await api.distinct_values(ws, "author.name")) == [("Ann", 2), ("Bob", 1)]
    assert pairs(await api.distinct_values(ws, ("author", "name"))) == [("Ann", 2), ("Bob", 1)]
    assert pairs(await api.distinct_values(ws, "file\\.name")) == [("x.txt", 1)]
    assert await api.distinct_values(ws, "missing") == []


async def test_distinct_values_are_told_apart_as_filters_tell_them(api, ws):
    await insert(api, ws)
    year = pairs(await api.distinct_values(ws, "year"))
    assert year == [(2021, 2), (2019, 1)] and type(year[0][0]) in (int, float)  # 2021 and 2021.0 are one value
    assert type(year[1][0]) is int  # an int stays an int
    assert pairs(await api.distinct_values(ws, "flag")) == [(False, 1), (True, 1), (1, 1)]  # booleans first on ties
    assert pairs(await api.distinct_values(ws, "mixed")) == [(1, 1), ("1", 1)]
    assert pairs(await api.distinct_values(ws, "big")) == [(BIG, 1), (BIG + 1, 1)]  # exact beyond 2**53


async def test_distinct_values_page_and_filter(api, ws):
    items = nodes(40)
    await api.insert(items, ws)
    everything = pairs(await api.distinct_values(ws, "rank", limit=None))
    assert len(everything) == 36 and all(count == 1 for _, count in everything)
    assert [v for v, _ in everything] == sorted(v for v, _ in everything)  # ties: ascending
    pages = [pairs(await api.distinct_values(ws, "rank", limit=10, offset=o)) for o in range(0, 40, 10)]
    assert sum(pages, []) == everything and [len(p) for p in pages] == [10, 10, 10, 6]
    assert await api.distinct_values(ws, "rank", limit=0) == []
    categories = pairs(await api.distinct_values(ws, "category", filter_dict={"flag": True}))
    expected: dict = {}
    for n in items:
        if n.metadata["flag"]:
            expected[n.metadata["category"]] = expected.get(n.metadata["category"], 0) + 1
    assert dict(categories) == expected
    for value, count in categories:
        assert count == await api.count(ws, filter_dict={"flag": True, "category": value})


async def test_distinct_values_of_the_dataset_agree_with_filter_counts(api, ws):
    await api.insert(nodes(40), ws)
    for field in ("category", "tags", "nested.name", "nested.level", "mixed", "flag", "nulls"):
        values = await api.distinct_values(ws, field, limit=None)
        assert values, field
        counts = [v.count for v in values]
        assert counts == sorted(counts, reverse=True)
        for value, count in values:
            assert count == await api.count(ws, filter_dict={field: {"in": [value]}}), (field, value)


# ---- ranges ----------------------------------------------------------------------------------


async def test_field_range_of_numbers_dates_and_strings(api, ws):
    await insert(api, ws)
    assert await api.field_range(ws, "year") == FieldRange(2019, 2021, "number", 3)
    assert await api.field_range(ws, "score_x") == FieldRange(0.5, 2.5, "number", 3)
    # dates order as instants, as date range filters order them: "2024-02" is the 1st of February
    assert await api.field_range(ws, "day") == FieldRange("2023-12-31", "2024-03-01", "date", 5)
    assert await api.field_range(ws, "kind") == FieldRange("book", "song", "string", 6)
    assert await api.field_range(ws, "tags") == FieldRange("x", "y", "string", 4)
    assert await api.field_range(ws, "author.age") == FieldRange(40, 40, "number", 1)
    assert await api.field_range(ws, "big") == FieldRange(BIG, BIG + 1, "number", 2)
    assert await api.field_range(ws, "mixed") == FieldRange(None, None, "mixed", 2)
    assert await api.field_range(ws, "flag") == FieldRange(1, 1, "number", 1)  # booleans are not numbers
    assert await api.field_range(ws, "missing") == FieldRange(None, None, None, 0)
    assert await api.field_range(ws, "year", filter_dict={"kind": "book"}) == FieldRange(2019, 2021, "number", 2)
    assert await api.field_range(ws, "kind", filter_dict={"kind": "nope"}) == FieldRange(None, None, None, 0)


async def test_field_range_agrees_with_range_filters(api, ws):
    items = nodes(40)
    await api.insert(items, ws)
    for field in ("rank", "ratio", "date"):
        found = await api.field_range(ws, field)
        values = [n.metadata[field] for n in items if field in n.metadata]
        assert (found.min, found.max, found.count) == (min(values), max(values), len(values))
        assert await api.count(ws, filter_dict={field: {"lt": found.min}}) == 0
        assert await api.count(ws, filter_dict={field: {"gt": found.max}}) == 0
    assert (await api.field_range(ws, "date")).kind == "date"


async def test_field_range_on_an_empty_workspace_and_bad_arguments(api, ws):
    assert await api.field_range(ws, "x") == FieldRange(None, None, None, 0)
    assert await api.distinct_values(ws, "x") == []
    with pytest.raises(ValidationError):
        await api.field_range(ws, "a..b")
    with pytest.raises(ValidationError):
        await api.distinct_values(ws, 3)
    with pytest.raises(ValidationError):
        await api.distinct_values(ws, "x", limit=-1)
    with pytest.raises(ValidationError):
        await api.distinct_values(ws, "x", offset=1.5)
    with pytest.raises(WorkspaceNotFoundError):
        await api.metadata_fields("nope")


async def test_introspection_sees_writes_at_once(api, ws):
    await api.insert(nodes(10), ws)
    assert metadata(0)["category"] == "AI"
    await api.insert(VectorNode(unique_id="d000", content="x", metadata={"category": "new", "rank": 1000}, vector=np.ones(16)), ws)
    assert ("new", 1) in pairs(await api.distinct_values(ws, "category"))
    assert (await api.field_range(ws, "rank")).max == 1000
    await api.delete("d000", ws)
    assert "new" not in [v for v, _ in pairs(await api.distinct_values(ws, "category"))]
    assert (await api.field_range(ws, "rank")).max == 8


# ---- everything at once ---------------------------------------------------------------------


@pytest.mark.parametrize("filter_dict", [None, {"kind": {"ne": "song"}}])
async def test_describe_metadata_is_the_other_calls_at_once(api, ws, filter_dict):
    assert await api.describe_metadata(ws) == []
    await insert(api, ws)
    summaries = await api.describe_metadata(ws, filter_dict=filter_dict, max_values=2)
    assert [s.field for s in summaries] == await api.metadata_fields(ws, filter_dict=filter_dict)
    for s in summaries:
        values = await api.distinct_values(ws, s.field.path, filter_dict=filter_dict, limit=None)
        assert s.values == (values if len(values) <= 2 else None), s.field
        assert s.range == await api.field_range(ws, s.field.path, filter_dict=filter_dict), s.field
    kinds = {s.field.key: s.values for s in summaries}["kind"]
    assert kinds is None if filter_dict is None else kinds == [("book", 3), ("film", 2)]  # three kinds are more than 2
    with pytest.raises(ValidationError):
        await api.describe_metadata(ws, max_values=None)
