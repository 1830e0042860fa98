"""A selection back into the store (tags) and into code (a portable filter dict)."""

from __future__ import annotations

import pytest

import vecbook
from vecbook import FilterError, VectorNode
from vecbook.errors import ValidationError
from vecbook.widgets.tagging import selection_code, selection_filter, tag_selection


def ids(store, ws, filter_dict):
    return sorted(n.unique_id for n in store.iter_workspace_nodes(ws, filter_dict=filter_dict))


def test_selection_filter_selects_exactly_the_selection(store):
    picked = ["boto3", "requests", "numpy"]
    f = selection_filter(store, "pypi", picked)
    assert list(f) == ["name"] and ids(store, "pypi", f) == sorted(picked)  # a key-like field first
    notes = selection_filter(store, "notes", ["n01", "n02", "n07"])
    assert ids(store, "notes", notes) == ["n01", "n02", "n07"]
    assert selection_filter(store, "notes", ["n01", "n02"], key_field="author.age") == {"author.age": [31, 32]}
    assert selection_code(store, "notes", ["n03"], key_field="year") == "filter_dict={'year': [2003]}"


def test_no_identifying_field_says_what_to_do_instead(store):
    with pytest.raises(FilterError, match=r"topic also matches 8 node\(s\) outside the selection"):
        selection_filter(store, "notes", ["n00", "n01"], key_field="topic")  # ai and food: 5 nodes each
    store.create_workspace("plain")
    store.insert([VectorNode(unique_id=f"p{i}", content=f"text {i}", metadata={"kind": "a"}) for i in range(4)], "plain")
    with pytest.raises(FilterError, match="not ids: tag them") as err:
        selection_filter(store, "plain", ["p1", "p2"])
    assert "no metadata field holds a distinct value" in str(err.value)
    assert selection_code(store, "plain", ["p1", "p2"]) == "nodes = store.get(['p1', 'p2'], 'plain')"
    with pytest.raises(FilterError, match="selection is empty"):
        selection_filter(store, "plain", [])
    with pytest.raises(FilterError, match="no longer in 'plain'"):
        selection_filter(store, "plain", ["p1", "gone"])
    with pytest.raises(FilterError, match="too many"):
        selection_filter(store, "plain", [f"x{i}" for i in range(11)], max_ids=10)




def test_tag_selection_writes_metadata_usable_in_filters(store):
    picked = ["n01", "n04", "n09"]
    assert tag_selection(store, "notes", picked, "label", "spam") == 3
    assert ids(store, "notes", {"label": "spam"}) == picked
    node = store.get(["n04"], "notes")[0]
    assert node.metadata["topic"] == "ai" and node.metadata["year"] == 2004  # the rest of the metadata stays
    assert selection_filter(store, "notes", picked, key_field="label") == {"label": ["spam"]}
    tag_selection(store, "notes", ["n01"], "label", "ham")
    assert ids(store, "notes", {"label": "spam"}) == ["n04", "n09"] and ids(store, "notes", {"label": "ham"}) == ["n01"]


def test_tag_selection_checks_its_arguments(store):
    with pytest.raises(ValidationError, match="selection is empty"):
        tag_selection(store, "notes", [], "label", "spam")
    with pytest.raises(ValidationError, match="label_field"):
        tag_selection(store, "notes", ["n01"], "", "spam")


def test_tag_selection_without_update_metadata_says_so():
    class Old:  # a store written before update_metadata
        pass

    with pytest.raises(NotImplementedError, match="no update_metadata"):
        tag_selection(Old(), "notes", ["n01"], "label", "x")


# ---- the actions on a selection, as state and as buttons ------------------------------------


def test_parse_tag_value():
    from vecbook.widgets.selection_actions import parse_tag_value

    assert [parse_tag_value(t) for t in ("spam", " 3 ", "0.5", "true", '"42"', "[1]", "")] == ["spam", 3, 0.5, True, "42", "[1]", ""]


def test_selection_actions_filter_code_and_errors(store):
    from vecbook.widgets.selection_actions import SelectionActions, SelectionActionsView

    actions = SelectionActions(store, "pypi")
    view = SelectionActionsView(actions)
    assert view.tag_button.disabled and view.code_button.disabled  # nothing selected yet
    actions.set_ids(["boto3", "numpy"])
    assert not view.code_button.disabled
    view.code_button.click()
    assert actions.code == "filter_dict={'name': ['boto3', 'numpy']}" and "filter_dict=" in view.output.value
    actions.set_ids(["boto3", "missing-one"])
    assert actions.code == "" and view.output.value == ""
    view.code_button.click()
    assert actions.code == "nodes = store.get(['boto3', 'missing-one'], 'pypi')"  # no filter can say it
    view.field_box.value = ""
    view.tag_button.click()
    assert actions.error.startswith("ValidationError") and "label_field" in view.output.value


def test_selection_actions_tag_button_writes_and_tells(store):
    from vecbook.widgets.selection_actions import SelectionActions, SelectionActionsView

    actions = SelectionActions(store, "notes", ["n02", "n03"])
    tagged = []
    actions.on("tagged", lambda ws, field: tagged.append((ws, field)))
    view = SelectionActionsView(actions)
    view.field_box.value, view.value_box.value = "review", "spam"
    view.tag_button.click()
    assert tagged == [("notes", "review")] and ids(store, "notes", {"review": "spam"}) == ["n02", "n03"]
    assert actions.message.startswith("tagged 2 node(s) with review='spam' (2 changed)") and "tagged 2 node(s)" in view.output.value
