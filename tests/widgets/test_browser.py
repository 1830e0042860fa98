"""BrowserState and WorkspaceBrowser: workspaces, paging, one node in full, guarded actions."""

from __future__ import annotations

import vecbook
from vecbook import HashEmbeddingModel
from vecbook.widgets import BrowserState, WorkspaceBrowser

from .conftest import DIMS, CountingStore, mixed_nodes


def test_workspaces_with_counts_and_pages(store):
    state = BrowserState(store, "notes", page_size=7)
    assert state.workspaces == [("notes", 20), ("pypi", 300)]
    assert (state.page, state.n_pages, [n.unique_id for n in state.rows]) == (0, 3, [f"n{i:02d}" for i in range(7)])
    state.next_page()
    state.next_page()
    assert state.page == 2 and [n.unique_id for n in state.rows] == [f"n{i:02d}" for i in range(14, 20)]
    state.next_page()  # past the end: stays on the last page
    assert state.page == 2
    state.goto(-5)
    assert state.page == 0
    df = state.page_frame()
    assert list(df.columns[:2]) == ["id", "content"]
    assert {"topic", "year", "author.name", "author.age", "tags"} <= set(df.columns)  # nested metadata flattened
    assert df.loc[0, "author.name"] == "author0" and df.loc[1, "tags"] == ["x", "y"]


def test_a_page_reads_only_its_own_rows():
    store = CountingStore(embedding_model=HashEmbeddingModel(dimensions=DIMS))
    store.create_workspace("big")
    store.insert([vecbook.VectorNode(unique_id=f"id{i:04d}", content=f"text {i}") for i in range(2000)], "big")
    CountingStore.yielded = 0
    state = BrowserState(store, "big", page_size=10)
    assert len(state.rows) == 10 and CountingStore.yielded == 10
    state.goto(3)
    assert [n.unique_id for n in state.rows][0] == "id0030" and CountingStore.yielded == 10 + 10
    state.goto(199)  # the last page reads its 10 rows, not the 1,990 before them
    assert [n.unique_id for n in state.rows] == [f"id{i:04d}" for i in range(1990, 2000)] and CountingStore.yielded == 30


def test_show_one_node_in_full(store):
    state = BrowserState(store, "notes")
    node = state.show("n03")
    assert node.unique_id == "n03" and node.vector is not None and len(node.vector) == DIMS
    assert state.show("missing") is None and "not in 'notes'" in state.error


def test_delete_asks_first(store):
    state = BrowserState(store, "notes", page_size=5)
    modified = []
    state.on("modified", modified.append)
    state.select(["n01", "n02"])
    action = state.ask_delete()
    assert action.kind == "delete" and "Delete 2 node(s) from 'notes'" in action.description
    assert store.count("notes") == 20  # nothing happens before confirm
    state.cancel()
    assert state.pending is None and store.count("notes") == 20
    state.ask_delete()
    assert state.confirm() == "deleted 2 node(s) from 'notes'"
    assert store.count("notes") == 18 and ("notes", 18) in state.workspaces and modified == ["notes"]
    assert [n.unique_id for n in state.rows] == ["n00", "n03", "n04", "n05", "n06"] and state.selected == []
    assert state.ask_delete() is None and "select the nodes" in state.error


def test_copy_and_dump_ask_first(store, tmp_path):
    state = BrowserState(store, "notes")
    action = state.ask_copy("notes_copy")
    assert "Copy 'notes' into 'notes_copy'?" in action.description and not store.exist_workspace("notes_copy")
    assert state.confirm() == "copied 20 node(s) from 'notes' to 'notes_copy'"
    assert ("notes_copy", 20) in state.workspaces
    assert "exists with 20 node(s)" in state.ask_copy("notes_copy").description
    state.cancel()
    action = state.ask_dump(tmp_path / "dumps")
    assert action.kind == "dump" and not (tmp_path / "dumps" / "notes.jsonl").exists()
    assert "dumped 20 node(s)" in state.confirm()
    other = vecbook.MemoryVectorStore()
    other.load_workspace("notes", path=str(tmp_path / "dumps"))
    assert other.count("notes") == 20
    assert "exists and will be replaced" in state.ask_dump(tmp_path / "dumps").description


def test_modified_names_the_workspaces_written_and_only_after_success(store, tmp_path):
    state = BrowserState(store, "pypi")
    modified = []
    state.on("modified", modified.append)
    state.ask_copy("notes")  # into an existing workspace: that one is written, not the source
    assert state.confirm() == "copied 300 node(s) from 'pypi' to 'notes'"
    assert modified == ["notes"] and store.count("notes") == 320
    state.ask_copy("bad id!")
    assert state.confirm() is None and state.error.startswith("InvalidWorkspaceIdError")
    assert modified == ["notes"]  # a failed copy wrote nothing
    state.ask_dump(tmp_path / "dumps")
    assert "dumped 300 node(s)" in state.confirm() and modified == ["notes"]  # a dump writes a file, no workspace
    state.select(["boto3"])
    state.ask_delete()
    store.delete_workspace("pypi")  # gone before the user confirms
    assert state.confirm() is None and state.error.startswith("WorkspaceNotFoundError")
    assert modified == ["notes"]
    state.open("notes")
    state.select(["n00"])
    state.ask_delete()
    state.confirm()
    assert modified == ["notes", "notes"] and store.count("notes") == 319


def test_errors_are_kept_and_shown(store):
    state = BrowserState(store, "notes")
    store.delete_workspace("notes")  # removed underneath the browser
    state.next_page()
    assert state.error.startswith("WorkspaceNotFoundError")
    state.open("pypi")
    assert state.error is None and state.total == 300


def test_to_dataframe_streams_the_whole_workspace(store):
    df = WorkspaceBrowser(store, "pypi").to_dataframe()
    assert len(df) == 300 and {"id", "content", "name", "version", "rank"} <= set(df.columns)
    assert len(WorkspaceBrowser(store).to_dataframe("notes", limit=5)) == 5


def test_widget_buttons_drive_the_state(store):
    b = WorkspaceBrowser(store, "notes", page_size=5)
    assert b.workspace_box.options == (("notes (20)", "notes"), ("pypi (300)", "pypi"))
    assert b.prev_button.disabled and "page 1 of 4" in b.page_label.value
    assert b.table.ids == ["n00", "n01", "n02", "n03", "n04"] and b.delete_button.disabled
    b.next_button.click()
    assert "page 2 of 4" in b.page_label.value and b.table.ids[0] == "n05"
    b.table.click("n06")  # a click on the row: selected and shown in full
    assert "vecbook-node-detail" in b.detail_html.value and "note 6 about travel things" in b.detail_html.value
    assert b.table.widget.selected == ["n06"] and "1 selected" in b.selection_label.value
    b.delete_button.click()
    assert b.confirm_box.layout.display == "flex" and "Delete 1 node(s)" in b.confirm_html.value
    b.cancel_button.click()
    assert b.confirm_box.layout.display == "none" and store.count("notes") == 20
    b.delete_button.click()
    b.confirm_button.click()
    assert store.count("notes") == 19 and "deleted 1 node(s)" in b.message_html.value
    assert b.workspace_box.options[0] == ("notes (19)", "notes")
    b.workspace_box.value = "pypi"
    assert b.state.workspace_id == "pypi" and "of 300" in b.page_label.value
    b.copy_to.value = "pypi2"
    b.copy_button.click()
    b.confirm_button.click()
    assert store.count("pypi2") == 300


def test_empty_store():
    b = WorkspaceBrowser(vecbook.MemoryVectorStore())
    assert b.state.workspace_id is None and b.table.widget.empty == "No workspace." and b.table.ids == []


def test_mixed_nodes_round_trip_through_the_table(memory_store):
    records = BrowserState(memory_store, "notes", page_size=20).page_records()
    assert [r["id"] for r in records] == [n.unique_id for n in mixed_nodes()]


def test_click_a_row_selects_it_shows_it_and_emits_focus(store):
    state = BrowserState(store, "notes", page_size=5)
    focused = []
    state.on("focus", focused.append)
    state.click("n02")
    assert state.selected == ["n02"] and state.detail.unique_id == "n02" and focused == ["n02"]
    state.click("n04", toggle=True)  # ctrl-click adds
    assert state.selected == ["n02", "n04"] and focused == ["n02", "n04"]
    state.click("n02", toggle=True)  # ctrl-click on a selected row drops it
    assert state.selected == ["n04"] and focused == ["n02", "n04"]
    state.click("n01")  # a plain click selects that row alone
    assert state.selected == ["n01"]


def test_sort_the_page_by_a_column(store):
    state = BrowserState(store, "pypi", page_size=20)
    state.sort("rank", ascending=False)
    ranks = [r["rank"] for r in state.page_records()]
    assert ranks == sorted(ranks, reverse=True) and len(ranks) == 20
    state.sort("rank")  # the same column again flips the order
    assert [r["rank"] for r in state.page_records()] == sorted(ranks)
    state.sort(None)  # the store's order again
    assert [r["id"] for r in state.page_records()] == [n.unique_id for n in state.rows]
    notes = BrowserState(store, "notes", page_size=20)
    notes.sort("published")  # 3 nodes lack the field: last, whichever the order
    assert [r.get("published") for r in notes.page_records()][-3:] == [None, None, None]
    notes.sort("published")
    assert [r.get("published") for r in notes.page_records()][-3:] == [None, None, None]


def test_the_last_page_builds_nodes_for_its_rows_only(monkeypatch):
    """The public API has no offset: the rows before the page are read as columns, but no node is built for them."""
    import vecbook.columns as columns_module

    store = vecbook.MemoryVectorStore(embedding_model=HashEmbeddingModel(dimensions=DIMS))
    store.create_workspace("big")
    store.insert([vecbook.VectorNode(unique_id=f"id{i:05d}", content=f"text {i}") for i in range(5000)], "big")
    built = []
    real = columns_module.trusted_node
    monkeypatch.setattr(columns_module, "trusted_node", lambda *a: built.append(a[0]) or real(*a))
    state = BrowserState(store, "big", page_size=20)
    state.goto(state.n_pages - 1)
    assert [n.unique_id for n in state.rows] == [f"id{i:05d}" for i in range(4980, 5000)]
    assert len(built) == 40  # the first page and the last, nothing in between


def test_table_rows_are_one_line_with_formatted_numbers(memory_store):
    memory_store.create_workspace("stats")
    memory_store.insert([vecbook.VectorNode(unique_id="big", content="word " * 300,
                                            metadata={"downloads": 154571315, "ratio": 0.123456, "mean": 1234567.891,
                                                      "tiny": 0.0000123, "tags": ["a", "b"]})], "stats")
    b = WorkspaceBrowser(memory_store, "stats")
    assert b.table.column("downloads") == ["154,571,315"] and b.table.column("ratio") == ["0.1235"]
    assert b.table.column("mean") == ["1,234,568"] and b.table.column("tiny") == ["1.230e-05"]
    assert b.table.column("tags") == ['["a", "b"]']
    row = b.table.widget.rows[0]
    content = row["cells"][b.table.widget.columns.index("content")]
    assert content.endswith("…") and row["titles"][b.table.widget.columns.index("content")] == ("word " * 300)[:599] + "…"
    assert row["num"][b.table.widget.columns.index("downloads")] is True
    css = b.table.widget._css
    assert "white-space: nowrap" in css and "text-overflow: ellipsis" in css and "overflow: auto" in css
    assert row["titles"][b.table.widget.columns.index("downloads")] == ""  # short: the cell is its own hover text
    b.table.click_header("downloads")
    assert b.state.sort_by == "downloads" and b.table.widget.sort_by == "downloads"


def test_a_table_sends_a_bounded_amount_to_the_browser():
    import json

    from vecbook.widgets.table_view import MAX_ROWS, TableView

    view = TableView("t")
    records = [{"id": f"n{i}", "content": "long text " * 500, "score": 0.5, "tags": ["x"] * 50} for i in range(2000)]
    view.show(records, more="all of them in panel.results")
    assert len(view.ids) == MAX_ROWS == 500
    assert view.widget.note == "showing the first 500 of 2,000 rows; all of them in panel.results"
    assert len(json.dumps(view.widget.rows)) < 1_000_000  # one redraw stays well under a websocket's limits
    view.show(records[:3])
    assert view.widget.note == "" and len(view.ids) == 3


def test_static_html_tables_are_one_line_with_hover_text():
    from vecbook.widgets._table import html_table

    out = html_table([{"id": "a", "n": 154571315, "content": "x" * 300}], "t", max_chars=50)
    assert ">154,571,315<" in out and "white-space:nowrap" in out and "text-align:right" in out
    assert f"title='{'x' * 300}'" in out and "min-width:100%" in out and "overflow:auto" in out


def test_sorting_is_said_and_reset_by_another_workspace(store):
    b = WorkspaceBrowser(store, "pypi", page_size=10)
    b.table.click_header("rank")
    assert "this page sorted by rank" in b.page_label.value and b.table.widget.sort_by == "rank"
    b.workspace_box.value = "notes"
    assert b.state.sort_by is None and "sorted by" not in b.page_label.value and b.table.widget.sort_by == ""


def test_numbers_format_sensibly():
    import numpy as np

    from vecbook.widgets._table import format_value, sort_records

    shown = [format_value(v) for v in (154571315, np.int64(42000), 0.812345, 1234.5678, 2.5e7, 1e-7, True, None, float("nan"))]
    assert shown == ["154,571,315", "42,000", "0.8123", "1,234.6", "25,000,000", "1.000e-07", "True", "", ""]
    rows = [{"v": 10}, {"v": None}, {"v": 9.5}, {"v": "b"}, {"v": "A"}, {}]
    assert [r.get("v") for r in sort_records(rows, "v")] == [9.5, 10, "A", "b", None, None]
    assert [r.get("v") for r in sort_records(rows, "v", ascending=False)] == ["b", "A", 10, 9.5, None, None]
