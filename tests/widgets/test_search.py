"""SearchState and SearchPanel: queries, top_k, the filter builder's widgets, results, errors."""

from __future__ import annotations

import pytest

from vecbook import MissingDependencyError
from vecbook.widgets import SearchPanel, SearchState


def test_state_search_with_scores_and_filter(store):
    state = SearchState(store, "pypi", top_k=5)
    state.query = "http client library"
    hits = state.run()
    assert len(hits) == 5 and state.error is None
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert [h.unique_id for h in hits] == [h.unique_id for h in store.search("http client library", "pypi", top_k=5)]
    df = state.results_frame()
    assert list(df.columns[:4]) == ["#", "id", "score", "content"] and {"name", "rank", "version"} <= set(df.columns)
    assert df["#"].tolist() == [1, 2, 3, 4, 5]
    assert state.status.startswith("5 result(s), vector search in ")

    state.builder.add("rank", "lte", 50)
    state.top_k = 100
    hits = state.run()
    assert hits and all(h.metadata["rank"] <= 50 for h in hits)
    assert state.filter_code == "filter_dict={'rank': {'lte': 50}}"


def test_state_without_query_lists_matching_nodes(store):
    state = SearchState(store, "notes", top_k=3)
    state.builder.add("topic", "eq", "food")
    hits = state.run()
    assert [h.unique_id for h in hits] == ["n01", "n05", "n09"] and all(h.score is None for h in hits)
    assert "no query, so no scores" in state.status
    assert "score" not in state.results_frame().columns


def test_bad_filter_is_shown_and_the_state_keeps_working(store):
    state = SearchState(store, "pypi", top_k=3)
    state.query = "web framework"
    state.filter_text = '{"rank": {"lessthan": 5}}'
    assert state.run() == [] and state.error.startswith("FilterError: ") and "lessthan" in state.error
    assert state.filter_code.startswith("# invalid filter:")
    state.filter_text = '{"rank": {"gte": 1, "lt": "z"}}'  # a range mixing numbers and strings
    assert state.run() == [] and "mixes string and number" in state.error
    state.filter_text = ""
    assert len(state.run()) == 3 and state.error is None


def test_backend_outage_is_shown_and_recovers(flaky_store):
    state = SearchState(flaky_store, "pypi", top_k=3)
    emitted = []
    state.on("results", emitted.append)
    state.query = "testing"
    flaky_store.down = True
    assert state.run() == []
    assert state.error.startswith("BackendUnavailableError: ") and "does not answer" in state.error
    flaky_store.down = False
    assert len(state.run()) == 3 and state.error is None
    assert [len(e) for e in emitted] == [0, 3]


def test_missing_workspace_is_an_error_not_a_crash(store):
    state = SearchState(store, "nope")
    assert state.error.startswith("WorkspaceNotFoundError")
    state.query = "x"
    assert state.run() == [] and "WorkspaceNotFoundError" in state.error


# ---- the panel, driven through its widgets ------------------------------------------------


def test_panel_query_topk_and_search_button(store):
    panel = SearchPanel(store, "pypi", top_k=4)
    assert panel.table.widget.empty == "No search yet." and panel.table.ids == []
    panel.query_box.value = "command line interface"  # Enter in the box runs the search
    assert len(panel.state.results) == 4
    assert len(panel.table.ids) == 4
    panel.top_k_box.value = 7
    panel.search_button.click()
    assert len(panel.results) == 7
    assert panel.table.ids == [n.unique_id for n in panel.state.results]
    assert "7 result(s)" in panel.status_html.value and panel.error_html.value == ""


def test_panel_filter_builder_widgets_emit_the_filter(store):
    panel = SearchPanel(store, "notes", top_k=20)
    assert "8 metadata fields, from all 20 nodes" in panel.filters.schema_note.value
    panel.filters.add_button.click()
    row = panel.filters.rows[0]
    assert [v for _, v in row.field.options][1:] == [f.name for f in panel.state.schema.fields.values()]
    assert [v for _, v in row.field.options][1:3] == ["author.age", "author.name"]
    row.field.value = "year"
    assert row.op.value == "between" and len(row.editors) == 2
    assert row.editors[0].placeholder == "from 2000" and row.editors[1].placeholder == "to 2019"
    row.editors[0].value, row.editors[1].value = "2010", "2012"
    assert "filter_dict={&#x27;year&#x27;: {&#x27;gte&#x27;: 2010, &#x27;lte&#x27;: 2012}}" in panel.filters.code.value
    panel.filters.add_button.click()
    topic = panel.filters.rows[1]
    topic.field.value = "topic"
    topic.op.value = "in"
    assert topic.editors[0].options == (("ai", "ai"), ("food", "food"), ("music", "music"), ("travel", "travel"))
    topic.editors[0].value = ("ai", "music")
    assert panel.filter_dict == {"year": {"gte": 2010, "lte": 2012}, "topic": ["ai", "music"]}
    panel.search_button.click()
    assert sorted(panel.results["id"]) == ["n11", "n12"]
    panel.filters.combine.value = "any"
    assert list(panel.filter_dict) == ["$or"]
    topic.remove.click()
    assert panel.filter_dict == {"year": {"gte": 2010, "lte": 2012}} and len(panel.filters.rows) == 1


def test_panel_shows_value_errors_and_keeps_working(store):
    panel = SearchPanel(store, "notes", top_k=5)
    row = panel.add_condition("year", "gte")
    row.editors[0].value = "twenty"
    assert "&#x27;twenty&#x27; is not a number" in panel.error_html.value
    assert "# invalid value" in panel.filters.code.value
    panel.search_button.click()
    assert panel.state.results == [] and "FilterError" in panel.error_html.value
    row.editors[0].value = "2015"
    panel.search_button.click()
    assert sorted(panel.results["id"]) == ["n15", "n16", "n17", "n18", "n19"]
    assert panel.error_html.value == ""


def test_panel_hand_typed_filter_overrides_the_builder(store):
    panel = SearchPanel(store, "notes", top_k=20)
    panel.add_condition("topic", "eq", "ai")
    panel.filters.text.value = '{"draft": true, "tags": "z"}'
    assert panel.filter_dict == {"draft": True, "tags": "z"}
    panel.search_button.click()
    assert sorted(panel.results["id"]) == ["n00", "n06", "n12", "n18"]
    panel.filters.text.value = "{broken"
    panel.search_button.click()
    assert "FilterError" in panel.error_html.value and panel.state.results == []


def test_panel_shows_a_backend_outage(flaky_store):
    panel = SearchPanel(flaky_store, "pypi", top_k=3)
    flaky_store.down = True
    panel.search("database driver")
    assert "BackendUnavailableError" in panel.error_html.value and panel.table.widget.empty == "No results (see the error above)."
    flaky_store.down = False
    panel.search_button.click()
    assert panel.error_html.value == "" and len(panel.results) == 3


def test_missing_extra_raises_missing_dependency(memory_store, monkeypatch):
    import importlib

    from vecbook.widgets import _deps

    real = importlib.import_module

    def fake(name, *args):
        if name == "ipywidgets":
            raise ModuleNotFoundError("No module named 'ipywidgets'", name="ipywidgets")
        return real(name, *args)

    monkeypatch.setattr(_deps.importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match=r"pip install 'vecbook\[notebook\]'"):
        SearchPanel(memory_store, "notes")


# ---- results follow the filter, clear, click, sort ------------------------------------------


def test_results_of_an_old_filter_do_not_stay_shown(store):
    state = SearchState(store, "pypi", top_k=20)
    state.filter_changed()  # nothing has run yet: nothing runs
    assert state.results == [] and not state.has_run
    state.query = "web framework"
    assert len(state.run()) == 20
    state.builder.add("rank", "lte", 50)
    assert state.stale
    hits = state.filter_changed()  # the filter changed: the search runs again with it
    assert hits and all(h.metadata["rank"] <= 50 for h in hits) and not state.stale
    assert state.results_filter == {"rank": {"lte": 50}}
    state.filter_text = '{"rank": {"lte": '  # unfinished: the old results go, the error says why
    assert state.filter_changed() == [] and state.error.startswith("FilterError") and state.results == []
    state.filter_text = ""
    assert state.filter_changed() and all(h.metadata["rank"] <= 50 for h in state.results)


def test_panel_reruns_the_search_when_the_filter_changes(store):
    panel = SearchPanel(store, "pypi", top_k=30)
    panel.search("database driver")
    assert any(h.metadata["rank"] > 100 for h in panel.state.results)
    panel.add_condition("rank", "lte", 100)  # editing the filter: results follow
    assert panel.state.results and all(h.metadata["rank"] <= 100 for h in panel.state.results)
    row = panel.filters.rows[0]
    row.editors[0].value = "abc"  # a value that does not parse: no results of the old filter
    assert panel.state.results == [] and panel.table.ids == [] and "not a number" in panel.error_html.value
    row.editors[0].value = "10"
    assert panel.state.results and all(h.metadata["rank"] <= 10 for h in panel.state.results)


def test_clear_search(store):
    state = SearchState(store, "pypi", top_k=5)
    emitted = []
    state.on("results", emitted.append)
    state.query = "testing"
    state.builder.add("rank", "lte", 500)
    state.run()
    state.clear()
    assert state.results == [] and state.query == "" and state.status == "" and not state.has_run
    assert [len(e) for e in emitted] == [5, 0]  # a linked map drops its highlight
    assert state.builder.to_filter() == {"rank": {"lte": 500}}  # the filter stays

    panel = SearchPanel(store, "pypi", top_k=5)
    panel.search("testing")
    panel.clear_button.click()
    assert panel.query_box.value == "" and panel.state.results == [] and panel.table.ids == []
    assert panel.table.widget.empty == "No search yet." and panel.status_html.value == ""


def test_click_a_result_row_focuses_it(store):
    panel = SearchPanel(store, "pypi", top_k=5)
    focused = []
    panel.state.on("focus", focused.append)
    panel.search("http client")
    second = panel.table.ids[1]
    panel.table.click(second)  # what the browser sends for a click on the row
    assert focused == [second] and panel.state.focused == second
    assert panel.table.widget.selected == [second]
    panel.search("web framework")  # a new search drops the focus
    assert panel.state.focused is None and panel.table.widget.selected == []


def test_sort_results_by_a_column(store):
    state = SearchState(store, "pypi", top_k=10)
    state.query = "data"
    state.run()
    state.sort("rank")
    ranks = [r["rank"] for r in state.result_records()]
    assert ranks == sorted(ranks)
    state.sort("rank")  # the same column again: descending
    assert [r["rank"] for r in state.result_records()] == sorted(ranks, reverse=True)
    state.sort("score")  # a score starts best first
    scores = [r["score"] for r in state.result_records()]
    assert scores == sorted(scores, reverse=True)
    state.sort("name")
    names = [r["name"] for r in state.result_records()]
    assert names == sorted(names, key=str.casefold)
    assert state.results_frame()["#"].tolist() == list(range(1, 11))  # the DataFrame stays best first

    panel = SearchPanel(store, "pypi", top_k=10)
    panel.search("data")
    panel.table.click_header("rank")
    assert panel.table.widget.sort_by == "rank" and panel.table.widget.ascending
    shown = [int(t.replace(",", "")) for t in panel.table.column("rank")]
    assert shown == sorted(shown)


# ---- the filter box: fields checked, readable errors, the workspace's own example -------------


def test_a_misspelt_field_is_an_error_with_did_you_mean(store):
    state = SearchState(store, "pypi", top_k=5)
    state.filter_text = '{"rnak": {"lte": 5}}'
    assert state.run() == []
    assert "unknown field 'rnak' (did you mean 'rank'?)" in state.error and "the fields in all 300 nodes are" in state.error
    state.filter_text = '{"$or": [{"rank": 1}, {"verison": "1.0"}]}'  # inside $or too
    state.run()
    assert "unknown field 'verison' (did you mean 'version'?)" in state.error
    state.filter_text = '{"rank": {"lte": 5}}'
    assert len(state.run()) == 5 and state.error is None


def test_bad_syntax_names_the_problem_and_where(store):
    state = SearchState(store, "pypi")
    state.filter_text = "{rank <= 100}"
    state.run()
    assert "<ast." not in state.error and "rank <= 100 is not a value" in state.error and "column 2" in state.error
    state.filter_text = '{"rank": {"lte" 100}}'
    state.run()
    assert "column" in state.error and "^" in state.error and "object at 0x" not in state.error
    state.filter_text = '{"draft": true,}'
    state.run()
    assert "true" in state.error and "True" in state.error


def test_placeholder_comes_from_the_workspace_fields(store):
    notes = SearchPanel(store, "notes")
    assert "rank" not in notes.filters.text.placeholder and '"author.age"' in notes.filters.text.placeholder
    pypi = SearchPanel(store, "pypi")
    assert '{"rank": {"lte": ' in pypi.filters.text.placeholder
    store.create_workspace("empty")
    assert "no metadata fields" in SearchPanel(store, "empty").filters.text.placeholder


def test_search_modes_in_the_state_and_the_panel(store):
    state = SearchState(store, "pypi", top_k=5)
    state.query, state.mode = "http", "keyword"
    hits = state.run()
    assert hits and state.error is None and state.status.startswith(f"{len(hits)} result(s), keyword search")
    assert [h.unique_id for h in hits] == [h.unique_id for h in store.search("http", "pypi", top_k=5, mode="keyword")]
    assert all("http" in h.content.lower() for h in hits)  # BM25: every hit holds the word
    state.mode = "nonsense"
    assert state.run() == [] and "mode must be one of 'vector', 'keyword', 'hybrid'" in state.error

    panel = SearchPanel(store, "pypi", top_k=5)
    panel.search("http")
    vector_ids = panel.table.ids
    panel.mode_box.value = "keyword"  # switching the mode runs the search again
    assert panel.table.ids == [h.unique_id for h in store.search("http", "pypi", top_k=5, mode="keyword")] != vector_ids
    hybrid = panel.search("http", mode="hybrid")
    assert [h.unique_id for h in hybrid] == [h.unique_id for h in store.search("http", "pypi", top_k=5, mode="hybrid")]
    assert "hybrid search" in panel.status_html.value
    with pytest.raises(ValueError, match="mode must be one of"):
        panel.search("http", mode="bm25")


def test_a_deferred_schema_fills_the_filter_box_when_it_arrives(store):
    panel = SearchPanel(store, "pypi", defer_schema=True)
    state = panel.state
    # not yet loaded: no fields offered, the note and placeholder say so, searches still run
    assert not state.schema_loaded and state.schema.fields == {} and state.builder.fields == {}
    assert "being read" in panel.filters.text.placeholder and "reading" in panel.filters.schema_note.value
    state.filter_text = '{"rnak": {"lte": 5}}'  # not checkable yet: the search runs, and matches nothing
    assert state.run() == [] and state.error is None
    state.filter_text = ""
    panel.search("http client")
    assert len(state.results) == 10 and state.error is None
    arrived = []
    state.on("schema", lambda: arrived.append(True))
    panel.load_schema_later()
    assert state.wait_schema(timeout=60) and arrived == [True]
    assert ("rank",) in state.builder.fields and '{"rank": {"lte": ' in panel.filters.text.placeholder
    assert "metadata field" in panel.filters.schema_note.value
    state.filter_text = '{"rnak": {"lte": 5}}'  # now checked against the fields
    assert state.run() == [] and "did you mean 'rank'" in state.error
    panel.load_schema_later()  # once: a second call does nothing
    assert state.wait_schema(timeout=1)


def test_a_schema_that_fails_to_load_is_an_error_not_a_hang(store):
    panel = SearchPanel(store, "no-such-workspace", defer_schema=True)
    panel.load_schema_later()
    assert not panel.state.wait_schema(timeout=60) and "no-such-workspace" in panel.state.error


def test_a_condition_added_before_the_schema_arrives_offers_its_fields_after(store):
    panel = SearchPanel(store, "pypi", defer_schema=True)
    early = panel.filters.add_row()  # what the "+ condition" button does, before the fields are known
    assert [label for label, _ in early.field.options] == ["field…"]
    panel.load_schema_later()
    assert panel.state.wait_schema(timeout=60)
    offered = [label for label, _ in early.field.options]
    assert "rank" in offered and offered[0] == "field…" and early.field.value == ""
    early.field.value = "rank"  # and it works as a clause of the arrived schema
    assert early.clause.field == ("rank",) and early.op.value in ("eq", "lte", "gte", "between")
    again = [label for label, _ in early.field.options]
    panel.state.reload_schema()
    panel.filters.refresh_schema()  # a schema read again (after a tag) keeps the row's choice
    assert early.field.value == "rank" and [label for label, _ in early.field.options] == again
