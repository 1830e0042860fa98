"""Metadata keys that hold a dot: each is its own field, reads distinctly, and its filter selects what it says.

A key ``"file.name"`` and a nested ``{"file": {"name": ...}}`` are two fields; so are
``{"a.b": 2}`` and ``{"a": {"b": 1}}``. The filter the builder shows must work as it is
when pasted into ``store.search(..., filter_dict=...)`` (memory and local backends).
"""

from __future__ import annotations

import ast
import math

import pytest

from vecbook import FilterError, VectorNode
from vecbook.widgets import BrowserState, MapState, SearchPanel, SearchState
from vecbook.widgets.introspect import field_label, flat_rows, flatten_metadata, metadata_paths, resolve_field

NODES = [
    VectorNode(unique_id="d1", content="first file", metadata={"file.name": "a.txt", "a.b": 2}),
    VectorNode(unique_id="d2", content="second file", metadata={"file.name": "b.txt", "a": {"b": 1}}),
    VectorNode(unique_id="d3", content="nested file", metadata={"file": {"name": "a.txt"}, "a": {"b": 2}}),
]


@pytest.fixture
def dotted(store):
    """The parametrised store (memory, local) with workspace "dotted" holding NODES."""
    store.create_workspace("dotted")
    store.insert(NODES, "dotted")
    return store


def pasted(filter_code: str) -> dict:
    """What a user gets by pasting the shown line ``filter_dict=...`` into Python (a literal, evaluated as Python reads it)."""
    name, _, literal = filter_code.partition("=")
    assert name == "filter_dict"
    return ast.literal_eval(literal)


def test_paths_are_kept_apart_and_read_distinctly():
    assert metadata_paths({"a": {"b": 1}, "a.b": 2}) == {("a", "b"): 1, ("a.b",): 2}
    assert flatten_metadata({"a": {"b": 1}, "a.b": 2}) == {"a.b": 1, '"a.b"': 2}
    assert flatten_metadata({"x": 1, "y": [1, 2]}) == {"x": 1, "y": [1, 2]}
    assert flatten_metadata({1: "x"}) == {"1": "x"}  # a non-string key reads as its text
    assert field_label(("file.name",)) == '"file.name"' and field_label(("file", "name")) == "file.name"
    assert field_label(("a", "b.c", "d")) == 'a."b.c".d' and field_label(("",)) == '""'
    for rows in ([{"x": 1, "y": [1, 2]}, {}, {"z": None}], [{"x": 1}, {"a": {"b": 1}, "a.b": 2}], [{"x": 1}, {1: "x"}], [{"x": {}}]):
        assert flat_rows(rows) == [flatten_metadata(m) for m in rows]  # many rows at once: the same columns


def test_introspection_offers_each_path_once(dotted):
    state = SearchState(dotted, "dotted")
    fields = state.schema.fields
    assert set(fields) == {("file.name",), ("file", "name"), ("a.b",), ("a", "b")}
    assert fields[("file.name",)].values == ["a.txt", "b.txt"] and fields[("file", "name")].values == ["a.txt"]
    assert fields[("a.b",)].values == [2] and fields[("a", "b")].values == [1, 2]
    assert sorted(f.name for f in fields.values()) == ['"a.b"', '"file.name"', "a.b", "file.name"]
    assert fields[("file.name",)].key == "file\\.name" and fields[("file", "name")].key == "file.name"


@pytest.mark.parametrize(
    "field, value, key, want",
    [
        ('"file.name"', "a.txt", "file\\.name", ["d1"]),  # the label the dropdown shows
        ("file\\.name", "b.txt", "file\\.name", ["d2"]),  # the filter key
        (("file", "name"), "a.txt", "file.name", ["d3"]),  # a path
        ("file.name", "a.txt", "file.name", ["d3"]),  # as in the filter language, a plain dot goes one level down
        ("a.b", 2, "a.b", ["d3"]),
        (("a.b",), 2, "a\\.b", ["d1"]),
    ],
)
def test_the_built_filter_pasted_into_search_selects_the_field(dotted, field, value, key, want):
    state = SearchState(dotted, "dotted", top_k=10)
    state.builder.add(field, "eq", value)
    assert state.current_filter() == {key: value}
    assert [n.unique_id for n in state.run()] == want and state.error is None
    # the line shown to the user, pasted into code as it is
    hits = dotted.search("file", "dotted", top_k=10, filter_dict=pasted(state.filter_code))
    assert sorted(n.unique_id for n in hits) == want


def test_a_dotted_key_named_as_it_is_stored(store):
    """Without a nested field of the same reading, the raw key names the dotted field (the reproducer's case)."""
    store.create_workspace("files")
    store.insert([VectorNode(unique_id="n1", content="x", metadata={"file.name": "a.txt"}),
                  VectorNode(unique_id="n2", content="y", metadata={"file.name": "b.txt"})], "files")
    state = SearchState(store, "files", top_k=10)
    assert {p: f.values for p, f in state.schema.fields.items()} == {("file.name",): ["a.txt", "b.txt"]}
    state.builder.add("file.name", "eq", "a.txt")
    assert state.filter_code == "filter_dict={'file\\\\.name': 'a.txt'}"
    assert [n.unique_id for n in state.run()] == ["n1"] and state.error is None
    assert [n.unique_id for n in store.search("x", "files", filter_dict=pasted(state.filter_code))] == ["n1"]


def test_two_dotted_fields_combine_without_merging(dotted):
    state = SearchState(dotted, "dotted", top_k=10)
    state.builder.add(("a.b",), "exists")
    state.builder.add(("a", "b"), "missing")
    assert state.current_filter() == {"a\\.b": {"exists": True}, "a.b": {"exists": False}}
    assert [n.unique_id for n in state.run()] == ["d1"]
    assert [c.describe() for c in state.builder.clauses] == ['"a.b" exists', "a.b is missing"]


def test_unknown_fields_are_refused_by_label(dotted):
    state = SearchState(dotted, "dotted")
    with pytest.raises(FilterError, match='unknown field .*known: a.b, "a.b", file.name, "file.name"'):
        state.builder.add("file.size")
    with pytest.raises(FilterError, match="unknown field"):
        resolve_field(state.schema.fields, ("nope",))


def test_panel_dropdown_shows_both_and_builds_the_escaped_key(dotted):
    panel = SearchPanel(dotted, "dotted", top_k=10)
    panel.filters.add_button.click()
    row = panel.filters.rows[0]
    assert [label for label, _ in row.field.options][1:] == ["a.b", '"a.b"', "file.name", '"file.name"']  # by path
    row.field.value = '"file.name"'
    assert row.op.value == "eq" and [v for _, v in row.editors[0].options][1:] == ["a.txt", "b.txt"]
    row.editors[0].value = "a.txt"
    assert panel.filter_dict == {"file\\.name": "a.txt"}
    assert "filter_dict={&#x27;file\\\\.name&#x27;: &#x27;a.txt&#x27;}" in panel.filters.code.value
    panel.search_button.click()
    assert panel.results["id"].tolist() == ["d1"]
    assert pasted(panel.state.filter_code) == panel.filter_dict


def test_tables_and_map_keep_the_two_apart(dotted):
    frame = BrowserState(dotted, "dotted").page_frame()
    assert {"a.b", '"a.b"', "file.name", '"file.name"'} <= set(frame.columns)
    row = frame.set_index("id").loc["d1"]
    assert row['"a.b"'] == 2 and row['"file.name"'] == "a.txt"
    state = MapState(dotted, "dotted")
    assert state.fields == ['"a.b"', '"file.name"', "a.b", "file.name"]
    state.set_color('"a.b"')
    colours = state.color_spec()
    assert colours["kind"] == "numeric" and [state.ids[i] for i, v in enumerate(colours["values"]) if not math.isnan(v)] == ["d1"]
