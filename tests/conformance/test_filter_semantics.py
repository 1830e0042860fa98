"""Filter semantics at the edges, identical on every backend: exact int64 numbers, exact
strings (NUL included), date ranges compared as instants, keys containing dots.

Each filter runs through search_by_vector and iter_workspace_nodes and must select what
the naive oracle (tests/oracle.py) selects.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import matches
from vecbook import FilterError, ValidationError, VectorNode

BIG = 2**53
TOP, BOTTOM = 2**63 - 1, -(2**63)


async def insert(api, ws, metadatas: dict[str, dict]) -> dict[str, dict]:
    vectors = np.random.default_rng(11).standard_normal((len(metadatas), 16)).astype(np.float32)
    await api.insert([VectorNode(unique_id=k, content=k, metadata=md, vector=v) for (k, md), v in zip(metadatas.items(), vectors)], ws)
    return metadatas


async def check(api, ws, data: dict[str, dict], filter_dict: dict) -> None:
    expected = sorted(k for k, md in data.items() if matches(md, filter_dict))
    found = await api.search_by_vector(np.ones(16, dtype=np.float32), ws, top_k=len(data), filter_dict=filter_dict)
    listed = await api.nodes(ws, filter_dict=filter_dict)
    assert sorted(n.unique_id for n in found) == expected, filter_dict
    assert sorted(n.unique_id for n in listed) == expected, filter_dict


# ---- numbers -----------------------------------------------------------------------------------

NUMBERS = {
    "below": {"n": BIG - 1},
    "at": {"n": BIG},
    "at_float": {"n": float(BIG)},
    "above": {"n": BIG + 1},
    "above2": {"n": BIG + 2},
    "list": {"n": [3, BIG + 1]},
    "top": {"n": TOP},
    "top1": {"n": TOP - 1},
    "top_float": {"n": 2.0**63},
    "bottom": {"n": BOTTOM},
    "bottom1": {"n": BOTTOM + 1},
    "snowflake_a": {"n": 1234567890123456789},
    "snowflake_b": {"n": 1234567890123456790},
    "small": {"n": 3.0},
    "flag": {"n": True},
    "text": {"n": str(BIG + 1)},
    "none": {},
}

NUMBER_FILTERS = [
    {"n": BIG + 1},
    {"n": BIG},
    {"n": float(BIG)},
    {"n": {"ne": BIG + 1}},
    {"n": {"in": [BIG - 1, BIG + 2, 1234567890123456789]}},
    {"n": {"nin": [BIG + 1, 3]}},
    {"n": {"gt": BIG}},
    {"n": {"gte": BIG + 1, "lt": BIG + 2}},
    {"n": {"lte": BIG + 1, "gt": float(BIG)}},
    {"n": {"lt": BIG + 1}},
    {"n": 1234567890123456789},
    {"n": {"ne": 1234567890123456790}},
    {"n": TOP},
    {"n": TOP - 1},
    {"n": 2.0**63},
    {"n": {"gte": TOP}},
    {"n": {"gt": TOP - 1, "lt": 2.0**63}},
    {"n": BOTTOM},
    {"n": {"gt": BOTTOM}},
    {"n": {"lte": BOTTOM + 1}},
    {"n": 3},
    {"n": {"gte": 1, "lte": 1e30}},
    {"$not": {"n": {"gte": BIG + 1}}},
]


async def test_ints_compare_exactly(api, ws):
    data = await insert(api, ws, NUMBERS)
    for filter_dict in NUMBER_FILTERS:
        await check(api, ws, data, filter_dict)
    stored = {n.unique_id: n.metadata for n in await api.get(list(NUMBERS), ws)}
    assert stored["above"]["n"] == BIG + 1 and type(stored["above"]["n"]) is int
    assert stored["top"]["n"] == TOP and stored["bottom"]["n"] == BOTTOM


@pytest.mark.parametrize("bad", [2**63, BOTTOM - 1, 10**400, [1, 2**64]])
async def test_ints_outside_int64_are_refused_at_insert_and_nothing_is_written(api, ws, bad):
    good = VectorNode(unique_id="good", content="g", metadata={"n": 1}, vector=np.ones(16))
    wrong = VectorNode(unique_id="wrong", content="w", metadata={"deep": {"n": bad}}, vector=np.ones(16))
    with pytest.raises(ValidationError, match=r"unique_id='wrong'.*\['deep'\]\['n'\].*int64") as info:
        await api.insert([good, wrong], ws)
    assert "0000000000000000000000000000000000000000" not in str(info.value)  # a 401-digit int is not printed
    assert await api.count(ws) == 0
    assert await api.get(["good", "wrong"], ws) == []


@pytest.mark.parametrize(
    "bad",
    [{"n": 2**63}, {"n": {"ne": BOTTOM - 1}}, {"n": [1, 10**400]}, {"n": {"nin": [2**64]}}, {"n": {"gte": 2**63}}, {"n": {"lt": -(2**70)}}],
    ids=lambda f: str(f)[:30],
)
async def test_filter_ints_outside_int64_raise_filter_error(api, ws, bad):
    await insert(api, ws, {"a": {"n": 1}})
    with pytest.raises(FilterError, match="use a float"):
        await api.search_by_vector(np.ones(16), ws, top_k=3, filter_dict=bad)
    with pytest.raises(FilterError, match="use a float"):
        await api.nodes(ws, filter_dict=bad)


# ---- strings -----------------------------------------------------------------------------------

STRINGS = {
    "a": {"s": "a"},
    "a_nul": {"s": "a\x00"},
    "nul": {"s": "\x00"},
    "a_nul_b": {"s": "a\x00b"},
    "empty": {"s": ""},
    "ab": {"s": "ab"},
    "emoji": {"s": "😀"},
    "bmp_top": {"s": "\uffff"},
    "accent": {"s": "é"},
    "list": {"s": ["x", "a\x00"]},
}

STRING_FILTERS = [
    {"s": "a"},
    {"s": "a\x00"},
    {"s": "\x00"},
    {"s": ""},
    {"s": {"in": ["a\x00b", "\x00"]}},
    {"s": {"ne": "a"}},
    {"s": {"nin": ["a\x00", "a"]}},
    {"s": {"gt": "a", "lt": "ab"}},
    {"s": {"gte": "\uffff"}},
    {"s": {"lt": "a"}},
]


async def test_strings_compare_exactly_nul_included(api, ws):
    data = await insert(api, ws, STRINGS)
    for filter_dict in STRING_FILTERS:
        await check(api, ws, data, filter_dict)
    (stored,) = await api.get(["a_nul_b"], ws)
    assert stored.metadata == {"s": "a\x00b"}


# ---- dates -------------------------------------------------------------------------------------

DATES = {
    "tokyo_evening": {"ts": "2024-01-01T05:00:00+09:00"},  # 2023-12-31T20:00Z
    "utc_fraction": {"ts": "2024-01-01T00:00:00.5Z"},
    "utc_exact": {"ts": "2024-01-01T00:00:00Z"},
    "naive": {"ts": "2024-01-01T00:00:00.000001"},
    "space": {"ts": "2023-12-31 23:59:59.999999"},
    "day": {"ts": "2024-01-01"},
    "month": {"ts": "2024-02"},
    "compact_offset": {"ts": "2024-01-01T01:30+0130"},  # 2024-01-01T00:00Z
    "hour_offset": {"ts": "2023-12-31T22:00-02"},  # 2024-01-01T00:00Z
    "long_fraction": {"ts": "2024-01-01T00:00:00.0000009Z"},  # truncated to 00:00:00Z
    "old": {"ts": "1500-06-01T00:00:00.000001Z"},
    "list": {"ts": ["1999-01-01", "2024-06-15T12:00Z"]},
    "not_a_date": {"ts": "2024-13-01"},
    "word": {"ts": "soon"},
    "number": {"ts": 1704067200},
    "none": {},
}

DATE_FILTERS = [
    {"ts": {"gte": "2024-01-01T00:00:00Z"}},
    {"ts": {"gt": "2024-01-01"}},
    {"ts": {"lt": "2024-01"}},
    {"ts": {"gte": "2023-12-31T21:00+01:00", "lte": "2023-12-31 20:00"}},
    {"ts": {"gte": "2024-01-01T00:00:00.000001", "lt": "2024-01-01T00:00:00.6+00:00"}},
    {"ts": {"gte": "2024-02", "lt": "2024-02-01T00:00:00.000001Z"}},
    {"ts": {"lte": "1600-01-01"}},
    {"ts": {"gt": "1500-06-01T00:00:00Z", "lt": "1500-06-01T00:00:00.000002Z"}},
    {"ts": {"gte": "1900-01", "lt": "2100-01"}},
    {"$not": {"ts": {"gte": "1000-01"}}},
    {"ts": "2024-01-01"},  # equality stays string equality
    {"ts": {"gte": "2024-12"}},  # "2024-13-01" is not a date: it does not match a date range
    {"ts": {"gte": "2024-13"}},  # not a date: a string range, by code point
]


async def test_date_ranges_compare_instants(api, ws):
    data = await insert(api, ws, DATES)
    for filter_dict in DATE_FILTERS:
        await check(api, ws, data, filter_dict)


async def test_a_range_mixing_a_date_and_another_string_is_a_filter_error(api, ws):
    await insert(api, ws, {"a": {"ts": "2024-01-01"}})
    with pytest.raises(FilterError, match="date"):
        await api.nodes(ws, filter_dict={"ts": {"gte": "2024-01-01", "lt": "later"}})


# ---- keys --------------------------------------------------------------------------------------

KEYS = {
    "dotted": {"file.name": "a.txt", "size": 1},
    "nested": {"file": {"name": "a.txt"}, "size": 2},
    "both": {"file.name": "b.txt", "file": {"name": "a.txt"}},
    "backslash": {"a\\b": 1, "x.y": {"z.w": 5}},
    "backslash_dot": {"a\\": {"b": 2}},
    "quote": {'q"k': "v", "sp ace": 1, "é": 2},
}

KEY_FILTERS = [
    {"file\\.name": "a.txt"},
    {"file.name": "a.txt"},
    {"file\\.name": {"exists": True}},
    {"file\\.name": {"exists": False}},
    {"file.name": {"ne": "a.txt"}},
    {"file\\.name": {"gte": "b"}},
    {"a\\\\b": 1},
    {"a\\\\.b": 2},
    {"a\\\\.b": {"gte": 1}},
    {"x\\.y.z\\.w": 5},
    {'q"k': "v"},
    {"sp ace": {"lt": 2}},
    {"é": 2},
]


async def test_keys_with_dots_are_their_own_field(api, ws):
    data = await insert(api, ws, KEYS)
    for filter_dict in KEY_FILTERS:
        await check(api, ws, data, filter_dict)
    assert {n.unique_id: n.metadata for n in await api.get(list(KEYS), ws)} == KEYS
