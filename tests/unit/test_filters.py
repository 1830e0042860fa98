"""The filter parser and the vectorised evaluator, checked against the naive oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import matches
from vecbook import FilterError
from vecbook.filters import And, Column, Compare, Exists, Not, Or, Range, evaluate, field_key, filter_mask, iso_instant, number_parts, parse_filter

BIG_INTS = [2**53 - 1, 2**53, 2**53 + 1, 2**53 + 2, -(2**53) - 1, 2**62 + 1, 2**63 - 1, 2**63 - 2, -(2**63), -(2**63) + 1, 1234567890123456789, 1234567890123456790]
FLOATS = [0.5, 1.0, -2.5, 2.0**53, 2.0**53 + 2, 2.0**62, 2.0**63, -(2.0**63), 1e300]
DATES = ["2024-01-01", "2024-06", "2024-01-01T05:00:00+09:00", "2023-12-31T20:00:00Z", "2024-01-01T00:00:00.5", "2024-01-01 00:00:00.0000005Z", "2023-12-31T23:00-01", "2024-01-01T00:00+0000"]
TEXTS = ["p", "q", "P", "", "a", "a\x00", "\x00", "é", "2024-13-01", "2024-01-01T25:00"]


def strategies(numbers, fields: list[str], dotted_keys: bool):
    """(metadata, filters): random metadata and random filters over ``fields``."""
    scalars = st.one_of(st.sampled_from(TEXTS + DATES), numbers, st.booleans())
    values = st.one_of(st.none(), scalars, st.lists(st.one_of(scalars, st.none()), max_size=3), st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2))

    @st.composite
    def metadata(draw):
        md = {f: draw(values) for f in ("a", "b", "f.g")[: 3 if dotted_keys else 2] if draw(st.booleans())}
        for key in ("n", "f"):
            if draw(st.booleans()):
                md[key] = draw(st.one_of(st.dictionaries(st.sampled_from(["x", "y", "g"]), st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=2), scalars))
        return md

    @st.composite
    def conditions(draw):
        kind = draw(st.sampled_from(["eq", "list", "ops", "range"]))
        if kind == "eq":
            return draw(scalars)
        if kind == "list":
            return draw(st.lists(scalars, max_size=3))
        if kind == "range":
            bound = draw(st.sampled_from([numbers, st.sampled_from(DATES), st.sampled_from(TEXTS)]))
            ops = draw(st.lists(st.sampled_from(["gt", "gte", "lt", "lte"]), min_size=1, max_size=2, unique=True))
            return {op: draw(bound) for op in ops}
        op = draw(st.sampled_from(["eq", "ne", "in", "nin", "exists"]))
        if op in ("in", "nin"):
            return {op: draw(st.lists(scalars, max_size=3))}
        if op == "exists":
            return {op: draw(st.booleans())}
        return {op: draw(scalars)}

    filters = st.recursive(
        st.dictionaries(st.sampled_from(fields), conditions(), min_size=1, max_size=2),
        lambda inner: st.one_of(
            st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"$not": x}, inner),
        ),
        max_leaves=6,
    )
    return metadata, filters


# Every backend today (tests/reliability/test_fuzz.py runs these on each): NULs, dates with
# offsets and fractions, floats, ints up to 2**53.
metadata, filters = strategies(st.one_of(st.integers(-3, 3), st.sampled_from([2**53 - 1, -(2**53), 2**53, 0.5, 1.0, -2.5, 2.0**53])), ["a", "b", "n.x", "f.g"], dotted_keys=False)
# Also ints beyond 2**53 up to the int64 limits, floats beyond, keys containing dots.
rich_metadata, rich_filters = strategies(st.one_of(st.integers(-3, 3), st.sampled_from(BIG_INTS), st.sampled_from(FLOATS)), ["a", "b", "n.x", "f\\.g", "f.g"], dotted_keys=True)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rich_metadata(), min_size=1, max_size=12), rich_filters)
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rich_metadata(), min_size=1, max_size=10), st.lists(rich_metadata(), min_size=1, max_size=6), st.data(), rich_filters)
def test_columns_brought_up_to_date_equal_fresh_ones(before, changes, data, spec):
    """Column.with_rows (what memory/local do after a write) agrees with a column built afresh."""
    tree = parse_filter(spec)
    after = list(before)
    rows = []
    for md in changes:  # rewrite an existing row or append one
        row = data.draw(st.integers(0, len(after)))
        after[row:row + 1] = [md]
        rows.append(row)
    old = {}

    def column(metadatas, cache):
        return lambda path: cache.setdefault(path, Column(metadatas, path))

    evaluate(tree, column(before, old), len(before))  # builds the columns the filter reads
    updated = {path: col.with_rows(after, np.unique(rows)) for path, col in old.items()}
    got = evaluate(tree, column(after, updated), len(after))
    assert got.tolist() == filter_mask(tree, after).tolist() == [matches(md, spec) for md in after]


# ---- exact numbers ---------------------------------------------------------------------------------


def ids(metadatas, spec):
    return [i for i, ok in enumerate(filter_mask(parse_filter(spec), metadatas)) if ok]


BIG = 2**53


def test_ints_beyond_2_53_compare_exactly():
    mds = [{"n": BIG - 1}, {"n": BIG}, {"n": BIG + 1}, {"n": float(BIG)}, {"n": BIG + 2}, {"n": [7, BIG + 1]}]
    assert ids(mds, {"n": BIG + 1}) == [2, 5]
    assert ids(mds, {"n": BIG}) == [1, 3]  # 2**53 == float(2**53)
    assert ids(mds, {"n": float(BIG)}) == [1, 3]
    assert ids(mds, {"n": {"ne": BIG + 1}}) == [0, 1, 3, 4]
    assert ids(mds, {"n": {"in": [BIG - 1, BIG + 1]}}) == [0, 2, 5]
    assert ids(mds, {"n": {"nin": [BIG + 1, BIG + 2]}}) == [0, 1, 3]
    assert ids(mds, {"n": {"gt": BIG}}) == [2, 4, 5]
    assert ids(mds, {"n": {"gte": BIG + 1, "lt": BIG + 2}}) == [2, 5]
    assert ids(mds, {"n": {"lte": BIG + 1, "gt": float(BIG)}}) == [2, 5]
    assert ids(mds, {"n": {"lt": BIG + 1}}) == [0, 1, 3, 5]
    assert ids(mds, {"n": {"gt": float(BIG)}}) == [2, 4, 5]


def test_int64_limits_compare_exactly():
    top, bottom = 2**63 - 1, -(2**63)
    mds = [{"n": top}, {"n": top - 1}, {"n": 2.0**63}, {"n": bottom}, {"n": bottom + 1}, {"n": -(2.0**63)}]
    assert ids(mds, {"n": top}) == [0]
    assert ids(mds, {"n": top - 1}) == [1]
    assert ids(mds, {"n": 2.0**63}) == [2]  # float(2**63 - 1) == 2.0**63, but 2**63 - 1 != 2.0**63
    assert ids(mds, {"n": {"gte": top}}) == [0, 2]
    assert ids(mds, {"n": {"lt": 2.0**63}}) == [0, 1, 3, 4, 5]
    assert ids(mds, {"n": bottom}) == [3, 5]  # -2**63 is a float exactly
    assert ids(mds, {"n": {"gt": bottom}}) == [0, 1, 2, 4]
    assert ids(mds, {"n": {"lte": bottom + 1, "gte": -(2.0**63)}}) == [3, 4, 5]


def test_numbers_are_never_booleans_or_strings():
    mds = [{"n": True}, {"n": 1}, {"n": 1.0}, {"n": "1"}, {"n": False}]
    assert ids(mds, {"n": 1}) == [1, 2]
    assert ids(mds, {"n": True}) == [0]
    assert ids(mds, {"n": {"gte": 0}}) == [1, 2]


@pytest.mark.parametrize("spec", [{"n": 2**63}, {"n": {"ne": -(2**63) - 1}}, {"n": [1, 10**400]}, {"n": {"nin": [2**64]}}, {"n": {"gte": 2**63}}, {"n": {"lt": -(2**70)}}])
def test_filter_ints_outside_int64_are_refused(spec):
    with pytest.raises(FilterError, match="int64 range.*use a float"):
        parse_filter(spec)


def test_filter_values_at_the_int64_limits_and_floats_beyond_are_fine():
    assert parse_filter({"n": 2**63 - 1}) == Compare(("n",), "eq", 2**63 - 1)
    assert parse_filter({"n": {"gte": -(2**63)}}) == Range(("n",), gte=-(2**63))
    assert ids([{"n": 2**63 - 1}, {"n": 1e300}], {"n": {"gt": 1e19}}) == [1]


def test_metadata_beyond_float_range_never_crashes_a_filter():
    """clean_metadata refuses it; filter_mask may still see it (metadata from elsewhere)."""
    mds = [{"n": 10**400}, {"n": -(10**400)}, {"n": 1}]
    assert ids(mds, {"n": 1}) == [2]
    assert ids(mds, {"n": {"gt": 1e308}}) == [0]
    assert ids(mds, {"n": {"ne": 1}}) == [0, 1]


INT64S = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(2**53 - 600, 2**53 + 600), st.integers(2**63 - 1100, 2**63 - 1))
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@given(st.one_of(INT64S, FINITE), st.one_of(INT64S, FINITE))
def test_number_parts_are_exact_and_ordered(a, b):
    (ha, ra), (hb, rb) = number_parts(a), number_parts(b)
    assert type(ha) is float and type(ra) is int and abs(ra) <= 512
    assert ha == float(a) and (ra == 0 if isinstance(a, float) else int(ha) + ra == a)
    assert ((ha, ra) < (hb, rb)) == (a < b) and ((ha, ra) == (hb, rb)) == (a == b)


# ---- exact strings ------------------------------------------------------------------------------


def test_strings_with_nul_and_any_unicode_compare_exactly():
    mds = [{"s": "a"}, {"s": "a\x00"}, {"s": "\x00"}, {"s": ""}, {"s": "a\x00b"}, {"s": "😀"}, {"s": "\uffff"}, {"s": "ab"}]
    assert ids(mds, {"s": "a"}) == [0]
    assert ids(mds, {"s": "a\x00"}) == [1]
    assert ids(mds, {"s": "\x00"}) == [2]
    assert ids(mds, {"s": ""}) == [3]
    assert ids(mds, {"s": {"in": ["a\x00", "a\x00b"]}}) == [1, 4]
    assert ids(mds, {"s": {"ne": "a"}}) == [1, 2, 3, 4, 5, 6, 7]
    assert ids(mds, {"s": {"gt": "a", "lt": "ab"}}) == [1, 4]  # "a" < "a\0" < "a\0b" < "ab"
    assert ids(mds, {"s": {"gt": "\uffff"}}) == [5]  # by code point, not UTF-16 unit
    assert ids(mds, {"s": {"lt": "a"}}) == [2, 3]


# ---- dates --------------------------------------------------------------------------------------

US = 1_000_000
DAY = 86_400 * US


@pytest.mark.parametrize(
    "text, instant",
    [
        ("1970-01", 0),
        ("1970-01-01", 0),
        ("1970-01-02", DAY),
        ("1969-12-31T23:59:59.999999Z", -1),
        ("2024-01-01T05:00:00+09:00", 1_704_052_800 * US),
        ("2023-12-31T20:00:00Z", 1_704_052_800 * US),
        ("2023-12-31 20:00", 1_704_052_800 * US),
        ("2023-12-31T19:00-0100", 1_704_052_800 * US),
        ("2023-12-31T21:00+01", 1_704_052_800 * US),
        ("2024-01-01T00:00:00.5", 1_704_067_200 * US + 500_000),
        ("2024-01-01T00:00:00.1234569Z", 1_704_067_200 * US + 123_456),  # truncated, not rounded
        ("2024-02-29", 1_709_164_800 * US),
        ("2000-02-29", 951_782_400 * US),
        ("0001-01-01", -62_135_596_800 * US),
        ("9999-12-31T23:59:59Z", 253_402_300_799 * US),
    ],
)
def test_iso_instants(text, instant):
    assert iso_instant(text) == instant


@pytest.mark.parametrize(
    "text",
    ["2024", "2024-1", "2024-13", "2024-00", "2023-02-29", "1900-02-29", "2024-04-31", "0000-01-01", "2024-01-01T24:00", "2024-01-01T10:60",
     "2024-01-01T10:00:60", "2024-01-01T10", "2024-01-01T10:00+24:00", "2024-01-01T10:00+05:60", "2024-01-01T10:00:00.", "2024-01-01t10:00",
     "2024-01-01T10:00z", "2024-01-01 ", " 2024-01-01", "2024-01-01T10:00:00+05:00:00", "２０２４-01-01", "2024-01-01X", "2024/01/01", "20240101"],
)
def test_not_iso_dates(text):
    assert iso_instant(text) is None


def test_date_ranges_compare_instants():
    mds = [
        {"ts": "2024-01-01T05:00:00+09:00"},  # 2023-12-31T20:00Z
        {"ts": "2024-01-01T00:00:00.5Z"},
        {"ts": "2024-01-01T00:00:00Z"},
        {"ts": "2024-01-01"},
        {"ts": "2024-01"},
        {"ts": "2023-12-31T23:59:59.999999"},
        {"ts": "not a date"},
        {"ts": 1_704_067_200},
        {"ts": ["2019-05-01", "2024-01-01T00:00:00.000001Z"]},
    ]
    assert ids(mds, {"ts": {"gte": "2024-01-01T00:00:00Z"}}) == [1, 2, 3, 4, 8]
    assert ids(mds, {"ts": {"gt": "2024-01-01"}}) == [1, 8]
    assert ids(mds, {"ts": {"lt": "2024-01"}}) == [0, 5, 8]
    assert ids(mds, {"ts": {"gte": "2023-12-31T21:00+01:00", "lte": "2023-12-31 20:00"}}) == [0]
    assert ids(mds, {"ts": {"gte": "1900-01", "lt": "2100-01"}}) == [0, 1, 2, 3, 4, 5, 8]  # not the string, not the number
    assert ids(mds, {"ts": "2024-01-01"}) == [3]  # equality stays string equality
    assert ids(mds, {"$not": {"ts": {"gte": "1900-01"}}}) == [6, 7]


def test_string_ranges_whose_bounds_are_not_dates_compare_code_points():
    mds = [{"v": "2024-01-01"}, {"v": "2024-13-01"}, {"v": "b"}, {"v": 5}]
    assert ids(mds, {"v": {"gte": "2024-13"}}) == [1, 2]  # "2024-13" is not a date
    assert ids(mds, {"v": {"lt": "a"}}) == [0, 1]


def test_a_range_mixing_a_date_and_another_string_is_an_error():
    with pytest.raises(FilterError, match="mixes a date bound and a non-date string bound"):
        parse_filter({"d": {"gte": "2024-01-01", "lt": "zzz"}})
    assert parse_filter({"d": {"gte": "2024-01-01", "lt": "2024-02"}}).kind == "date"
    assert parse_filter({"d": {"gte": "a", "lt": "b"}}).kind == "string"
    assert parse_filter({"d": {"gte": 1}}).kind == "number"


# ---- keys ---------------------------------------------------------------------------------------


def test_dotted_keys_are_their_own_field():
    mds = [{"file.name": "a.txt"}, {"file": {"name": "a.txt"}}, {"file.name": "b", "file": {"name": "a.txt"}}, {"a\\b": 1}, {"a\\": {"b": 2}}]
    assert ids(mds, {"file\\.name": "a.txt"}) == [0]
    assert ids(mds, {"file.name": "a.txt"}) == [1, 2]
    assert ids(mds, {"file\\.name": {"exists": True}}) == [0, 2]
    assert ids(mds, {"a\\\\b": 1}) == [3]
    assert ids(mds, {"a\\\\.b": 2}) == [4]
    assert parse_filter({field_key(["x.y", "z\\"]): 1}).path == ("x.y", "z\\")
    with pytest.raises(FilterError, match="backslash escapes only"):
        parse_filter({"a\\b": 1})
