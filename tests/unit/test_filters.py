"""The filter parser and the vectorised evaluator, checked against the naive oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import matches
from vecbook import FilterError
from vecbook.filters import And, Compare, Exists, Not, Or, Range, filter_mask, parse_filter

FIELDS = ["a", "b", "n.x"]
scalars = st.one_of(st.sampled_from(["p", "q", "P", "", "2024-01-01", "2024-06"]), st.integers(-3, 3), st.sampled_from([0.5, 1.0, -2.5]), st.booleans())
values = st.one_of(st.none(), scalars, st.lists(st.one_of(scalars, st.none()), max_size=3), st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2))


@st.composite
def metadata(draw):
    md = {f: draw(values) for f in ("a", "b") if draw(st.booleans())}
    if draw(st.booleans()):
        md["n"] = draw(st.one_of(st.dictionaries(st.sampled_from(["x", "y"]), st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=2), scalars))
    return md


numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -2.5]))
strings = st.sampled_from(["p", "q", "", "2024-01-01", "2024-03"])


@st.composite
def conditions(draw):
    kind = draw(st.sampled_from(["eq", "list", "ops", "range"]))
    if kind == "eq":
        return draw(scalars)
    if kind == "list":
        return draw(st.lists(scalars, max_size=3))
    if kind == "range":
        bound = draw(st.sampled_from([numbers, strings]))
        ops = draw(st.lists(st.sampled_from(["gt", "gte", "lt", "lte"]), min_size=1, max_size=2, unique=True))
        return {op: draw(bound) for op in ops}
    op = draw(st.sampled_from(["eq", "ne", "in", "nin", "exists"]))
    if op in ("in", "nin"):
        return {op: draw(st.lists(scalars, max_size=3))}
    if op == "exists":
        return {op: draw(st.booleans())}
    return {op: draw(scalars)}


filters = st.recursive(
    st.dictionaries(st.sampled_from(FIELDS), conditions(), min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(metadata(), min_size=1, max_size=12), filters)
def test_vectorised_evaluation_equals_the_oracle(metadatas, spec):
    got = filter_mask(parse_filter(spec), metadatas)
    expected = np.array([matches(md, spec) for md in metadatas])
    assert got.tolist() == expected.tolist(), spec


def test_parse_tree_shapes():
    assert parse_filter(None) is None and parse_filter({}) is None
    assert parse_filter({"a": 1}) == Compare(("a",), "eq", 1)
    assert parse_filter({"a.b": [1, 2]}) == Compare(("a", "b"), "in", (1, 2))
    assert parse_filter({"a": {"gte": 1, "lt": 5}}) == Range(("a",), gte=1, lt=5)
    assert parse_filter({"a": {"$exists": False}}) == Exists(("a",), False)
    tree = parse_filter({"$or": [{"a": 1}, {"$not": {"b": "x"}}], "c": {"ne": True}})
    assert tree == And((Or((Compare(("a",), "eq", 1), Not(Compare(("b",), "eq", "x")))), Compare(("c",), "ne", True)))


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"a": None}, "exists"),
        ({"a": {"between": 1}}, "unknown operator 'between'"),
        ({"a": {"gte": 1, "lte": "z"}}, "mixes string and number"),
        ({"$xor": []}, "unknown logical operator"),
        ({"a": {"in": 5}}, "takes a list"),
        ({"a": {"exists": 1}}, "true or false"),
        ({"a": {"b": 1}}, "dotted key such as 'a.b'"),
        ({"a..b": 1}, "empty path segment"),
        ("a == 1", "must be a dict"),
    ],
)
def test_errors_name_the_problem(bad, message):
    with pytest.raises(FilterError, match=message) as info:
        parse_filter(bad)
    assert isinstance(info.value, ValueError)
