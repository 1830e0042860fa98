"""Introspection of metadata, and the filter builder's emitted dicts (checked against the stores)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecbook import FilterError
from vecbook.filters import parse_filter
from vecbook.widgets import FilterBuilder, FilterClause, WorkspaceSchema, introspect_workspace
from vecbook.widgets.filter_builder import OPS, format_filter, ops_for, parse_filter_text, parse_value
from vecbook.widgets.introspect import flatten_metadata, introspect_metadata


def ids(store, ws, filter_dict):
    return sorted(n.unique_id for n in store.iter_workspace_nodes(ws, filter_dict=filter_dict))


# ---- introspection -----------------------------------------------------------------------


def test_field_kinds_values_and_ranges(store):
    schema = introspect_workspace(store, "notes")
    assert list(schema.fields) == [("author", "age"), ("author", "name"), ("draft",), ("published",), ("score_f",),
                                   ("tags",), ("topic",), ("year",)]  # paths, sorted
    f = {info.name: info for info in schema.fields.values()}
    assert list(f) == ["author.age", "author.name", "draft", "published", "score_f", "tags", "topic", "year"]
    assert f["topic"].kind == "string" and f["topic"].values == ["ai", "food", "music", "travel"]
    assert f["year"].kind == "integer" and (f["year"].min, f["year"].max) == (2000, 2019)
    assert f["score_f"].kind == "number" and f["score_f"].max == pytest.approx(0.95)
    assert f["published"].kind == "date" and f["published"].count == 17  # missing on 3 nodes
    assert (f["published"].min, f["published"].max) == ("2026-01-13", "2026-12-12")  # n00 has no date
    assert f["draft"].kind == "boolean" and f["draft"].values == [False, True]
    assert f["tags"].is_list and f["tags"].values == ["x", "y", "z"]
    assert f["author.name"].values == [f"author{i}" for i in range(5)]
    assert f["year"].values == list(range(2000, 2020))  # 20 distinct values: few enough to list
    assert schema.describe() == "8 metadata fields, from all 20 nodes"


def test_distinct_values_only_when_few():
    infos = introspect_metadata([{"a": i, "b": i % 3} for i in range(50)], max_distinct=10)
    assert infos[("a",)].values is None and (infos[("a",)].min, infos[("a",)].max) == (0, 49)
    assert infos[("b",)].values == [0, 1, 2]


def test_the_schema_comes_from_the_store_over_every_node(store):
    schema = introspect_workspace(store, "pypi")
    assert schema.total == 300
    assert "from all 300 nodes" in schema.describe()
    rank = schema.fields[("rank",)]
    assert rank.kind == "integer" and rank.count == store.count("pypi", filter_dict={"rank": {"exists": True}})
    assert (rank.min, rank.max) == (store.field_range("pypi", "rank").min, store.field_range("pypi", "rank").max)


def test_mixed_and_odd_values():
    infos = introspect_metadata([{"m": 1}, {"m": "one"}, {"m": None}, {"e": []}, {"v": "1.2.3"}, {"d": {}}])
    assert infos[("m",)].kind == "mixed" and infos[("m",)].count == 2
    assert infos[("v",)].kind == "string"  # versions are not dates
    assert ("e",) in infos and infos[("e",)].count == 0
    assert flatten_metadata({"a": {"b": {"c": 1}}, "d": {}}) == {"a.b.c": 1, "d": {}}


# ---- the filter builder --------------------------------------------------------------------


@pytest.mark.parametrize(
    "clause, expected",
    [
        (FilterClause("topic", "eq", "ai"), {"topic": "ai"}),
        (FilterClause("topic", "ne", "ai"), {"topic": {"ne": "ai"}}),
        (FilterClause("topic", "in", ["ai", "food"]), {"topic": ["ai", "food"]}),
        (FilterClause("topic", "nin", ["ai"]), {"topic": {"nin": ["ai"]}}),
        (FilterClause("year", "between", (2005, 2010)), {"year": {"gte": 2005, "lte": 2010}}),
        (FilterClause("year", "between", (None, 2010)), {"year": {"lte": 2010}}),
        (FilterClause("year", "between", (2005, None)), {"year": {"gte": 2005}}),
        (FilterClause("year", "gt", 2015), {"year": {"gt": 2015}}),
        (FilterClause("published", "lt", "2026-06"), {"published": {"lt": "2026-06"}}),
        (FilterClause("published", "exists"), {"published": {"exists": True}}),
        (FilterClause("published", "missing"), {"published": {"exists": False}}),
        (FilterClause("draft", "eq", False), {"draft": False}),
        (FilterClause("author.name", "eq", "author1"), {"author.name": "author1"}),
    ],
)
def test_each_operator_emits_the_portable_form(memory_store, clause, expected):
    builder = FilterBuilder(introspect_workspace(memory_store, "notes").fields, [clause])
    assert builder.to_filter() == expected
    assert ids(memory_store, "notes", builder.to_filter()) == ids(memory_store, "notes", expected)


@pytest.mark.parametrize("clause", [FilterClause(), FilterClause("year", "between", (None, None)),
                                    FilterClause("topic", "in", []), FilterClause("topic", "eq", None)])
def test_incomplete_clauses_emit_nothing(clause):
    assert FilterBuilder(clauses=[clause]).to_filter() is None


def test_combining_clauses(store):
    fields = introspect_workspace(store, "notes").fields
    b = FilterBuilder(fields)
    b.add("topic", "eq", "ai")
    b.add("year", "between", (2004, 2016))
    assert b.to_filter() == {"topic": "ai", "year": {"gte": 2004, "lte": 2016}}
    assert ids(store, "notes", b.to_filter()) == ["n04", "n08", "n12", "n16"]
    b.add("year", "ne", 2008)  # the same field twice: an explicit $and
    assert b.to_filter() == {"$and": [{"topic": "ai"}, {"year": {"gte": 2004, "lte": 2016}}, {"year": {"ne": 2008}}]}
    assert ids(store, "notes", b.to_filter()) == ["n04", "n12", "n16"]
    b.combine = "any"
    assert list(b.to_filter()) == ["$or"]
    b.remove(2)
    b.remove(1)
    assert b.to_filter() == {"topic": "ai"}  # one clause: no $or wrapper
    with pytest.raises(FilterError, match="unknown field"):
        b.add("nope")
    with pytest.raises(FilterError, match="unknown operator"):
        b.add("topic", "like")


def by_name(store, ws="notes"):
    return {info.name: info for info in introspect_workspace(store, ws).fields.values()}


def test_operators_offered_follow_the_field_type(memory_store):
    fields = by_name(memory_store)
    assert ops_for(fields["year"])[0] == "between" and "in" not in ops_for(fields["score_f"])
    assert ops_for(fields["topic"])[0] == "eq" and "between" not in ops_for(fields["topic"])
    assert ops_for(fields["draft"]) == ("eq", "exists", "missing")
    assert set(ops_for(None)) <= set(OPS)


def test_parse_value_by_kind(memory_store):
    fields = by_name(memory_store)
    assert parse_value("12", fields["year"]) == 12 and parse_value("0.5", fields["score_f"]) == 0.5
    assert parse_value(" ", fields["year"]) is None
    assert parse_value("ai", fields["topic"]) == "ai" and parse_value("2026-05", fields["published"]) == "2026-05"
    assert parse_value("false", fields["draft"]) is False
    with pytest.raises(FilterError, match="'abc' is not a number"):
        parse_value("abc", fields["year"])
    with pytest.raises(FilterError, match="not a finite number"):
        parse_value("nan", fields["score_f"])
    with pytest.raises(FilterError, match="not true or false"):
        parse_value("maybe", fields["draft"])


def test_hand_typed_filters():
    assert parse_filter_text('{"rank": {"lte": 100}}') == {"rank": {"lte": 100}}
    assert parse_filter_text("filter_dict={'draft': True}") == {"draft": True}
    assert parse_filter_text("") is None and parse_filter_text("None") is None
    with pytest.raises(FilterError, match="not valid") as err:
        parse_filter_text("{rank <= 100}")
    assert "<ast." not in str(err.value)
    with pytest.raises(FilterError, match="must be a dict"):
        parse_filter_text("[1, 2]")
    with pytest.raises(FilterError, match="unknown operator"):
        parse_filter_text('{"rank": {"lessthan": 3}}')
    assert format_filter({"a": 1}) == "filter_dict={'a': 1}"


_VALUES = {"topic": st.sampled_from(["ai", "food", "travel", "music", "none"]), "year": st.integers(1995, 2025),
           "published": st.sampled_from(["2026-01", "2026-03-15", "2026-12-31"]), "draft": st.booleans(),
           "author.name": st.sampled_from(["author0", "author3", "x"])}


@st.composite
def clauses(draw):
    field = draw(st.sampled_from(sorted(_VALUES)))
    op = draw(st.sampled_from(["eq", "ne", "in", "nin", "between", "gte", "lt", "exists", "missing"]))
    if field in ("topic", "draft", "author.name") and op in ("between", "gte", "lt"):
        op = "eq"
    value = draw(_VALUES[field])
    if op in ("in", "nin"):
        value = draw(st.lists(_VALUES[field], min_size=1, max_size=3))
    elif op == "between":
        value = (draw(st.one_of(st.none(), _VALUES[field])), draw(st.one_of(st.none(), _VALUES[field])))
    return FilterClause(field, op, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(clauses(), max_size=4), st.sampled_from(["all", "any"]))
def test_every_built_filter_is_valid_and_means_what_it_says(memory_store, built, combine):
    """Whatever the clauses, the emitted dict parses and selects the AND/OR of what each clause selects."""
    result = FilterBuilder(clauses=built, combine=combine).to_filter()
    parse_filter(result)
    parts = [c.to_dict() for c in built if c.to_dict() is not None]
    everything = set(ids(memory_store, "notes", None))
    sets = [set(ids(memory_store, "notes", p)) for p in parts]
    want = everything if not sets else set.intersection(*sets) if combine == "all" else set.union(*sets)
    assert set(ids(memory_store, "notes", result)) == want


# ---- hand-typed filters checked against the workspace ------------------------------------


def test_unknown_fields_with_close_matches(store):
    from vecbook.widgets.filter_text import describe_unknown, unknown_fields

    schema = introspect_workspace(store, "notes")
    assert unknown_fields({"topic": "ai", "author.name": "x", "author": {"exists": True}}, schema) == {}
    found = unknown_fields({"$and": [{"topc": "ai"}, {"$not": {"autor.name": "x"}}, {"year": 1}]}, schema)
    assert found == {"topc": ["topic"], "autor.name": ["author.name", "author.age"]}  # closest first
    assert unknown_fields({"zzz": 1}, schema) == {"zzz": []}
    text = describe_unknown(found, schema)
    assert "unknown field 'topc' (did you mean 'topic'?)" in text and "all 20 nodes" in text and "author.age" in text
    empty = introspect_workspace(vecbook_empty_store(), "e")
    assert unknown_fields({"anything": 1}, empty) == {}  # nothing known: nothing to check against


def vecbook_empty_store():
    import vecbook

    s = vecbook.MemoryVectorStore()
    s.create_workspace("e")
    return s


def test_example_filter_uses_the_workspace_fields(store):
    from vecbook.widgets.filter_text import example_filter, placeholder

    notes, pypi = introspect_workspace(store, "notes"), introspect_workspace(store, "pypi")
    assert example_filter(notes) == {"author.age": {"lte": 39}}
    assert ids(store, "notes", example_filter(notes))  # the example matches something
    assert list(example_filter(pypi)) == ["rank"] and ids(store, "pypi", example_filter(pypi))
    assert example_filter(WorkspaceSchema("w", introspect_metadata([{"kind": "a"}, {"kind": "b"}]), 2)) == {"kind": "a"}
    assert "no metadata fields" in placeholder(introspect_workspace(vecbook_empty_store(), "e"))
