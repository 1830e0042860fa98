"""explore(store): the three widgets linked."""

from __future__ import annotations

import numpy as np
import pytest

import vecbook
from vecbook.widgets import Explorer, explore


def test_search_highlights_on_the_map_and_selection_fills_the_table(store):
    ex = explore(store, "pypi", top_k=8)
    assert isinstance(ex, Explorer) and ex.workspace_id == "pypi"
    assert "Select points on the map" in ex.selection_html.value
    ex.search.query_box.value = "testing framework"
    hits = ex.search.state.results
    assert len(hits) == 8
    assert [ex.map.state.ids[i] for i in ex.map.state.highlight_indices] == [h.unique_id for h in hits]
    assert len(ex.map.plot.annotations) == 8 + 8 + 2 and "8 highlighted" in ex.map.status_html.value

    ex.search.add_condition("rank", "lte", 20)
    ex.search.search_button.click()
    assert all(h.metadata["rank"] <= 20 for h in ex.search.state.results)
    assert len(ex.map.state.highlight_indices) == len(ex.search.state.results)
    assert ex.map.state.kept is not None and len(ex.map.state.kept) == 20  # the filter's excluded points drawn apart

    ex.search.filters.text.value = "{oops"
    ex.search.search_button.click()  # an error clears the highlight, the map stays
    assert ex.map.state.highlighted == {} and "FilterError" in ex.search.error_html.value

    ex.map.select(["boto3", "requests", "numpy"])
    assert "Selected on the map: 3 point(s)" in ex.selection_html.value
    assert ex.selection_html.value.count("<tr data-id=") == 3
    assert sorted(ex.selection["id"]) == ["boto3", "numpy", "requests"]
    ex.map.select([])
    assert "Select points on the map" in ex.selection_html.value


def test_browser_writes_reload_the_map_and_fields(memory_store):
    ex = explore(memory_store, "notes")
    assert ex.map.state.n_points == 20
    ex.browser.state.select(["n00", "n01", "n02"])
    ex.browser.delete_button.click()
    ex.browser.confirm_button.click()
    assert ex.map.state.n_points == 17 and ex.map.plot.points.shape[0] == 17
    assert ex.search.state.schema.total == 17


def test_copying_into_the_explored_workspace_reloads_the_map(memory_store):
    ex = explore(memory_store, "notes")
    assert ex.map.state.n_points == 20 and ("rank",) not in ex.search.state.schema.fields
    ex.browser.workspace_box.value = "pypi"
    ex.browser.copy_to.value = "notes"
    ex.browser.copy_button.click()
    ex.browser.confirm_button.click()
    assert memory_store.count("notes") == 320
    assert ex.map.state.n_points == 320 and ex.map.plot.points.shape[0] == 320
    assert ("rank",) in ex.search.state.schema.fields and ex.search.state.schema.total == 320
    ex.browser.copy_to.value = "pypi_copy"  # a copy elsewhere leaves the explored map alone
    ex.browser.copy_button.click()
    ex.browser.confirm_button.click()
    assert memory_store.count("pypi_copy") == 300 and ex.map.state.n_points == 320


def test_table_focus_and_map_click_link_the_parts(memory_store):
    ex = explore(memory_store, "pypi")
    ex.search.state._emit("focus", "requests")  # what a click on a results row sends
    assert ex.map.state.focused == ex.map.state.row_of["requests"] and ex.map.plot.zoom_to is not None
    ex.browser.state._emit("focus", "numpy")
    assert ex.map.state.focused == ex.map.state.row_of["numpy"]
    ex.map.plot.selection = np.array([ex.map.state.row_of["boto3"]], dtype=np.int32)  # a click on the map
    assert ex.browser.state.detail is not None and ex.browser.state.detail.unique_id == "boto3"


def test_defaults_to_the_first_workspace_and_refuses_an_empty_store(memory_store):
    assert explore(memory_store).workspace_id == "notes"
    with pytest.raises(ValueError, match="no workspace"):
        explore(vecbook.MemoryVectorStore())


def test_displays_as_one_widget(memory_store):
    ex = explore(memory_store, "notes")
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id


def test_the_search_panels_schema_is_read_after_the_map_is_built(store):
    ex = explore(store, "pypi")
    assert ex.map.state.n_points == 300  # the map is there when explore() returns
    assert ex.search.state.wait_schema(timeout=60)  # the schema follows in a thread
    assert ("rank",) in ex.search.state.builder.fields and "metadata field" in ex.search.filters.schema_note.value
    ex.search.filters.text.value = '{"rnak": 3}'
    ex.search.search_button.click()
    assert "did you mean &#x27;rank&#x27;" in ex.search.error_html.value


def test_colour_menu_and_filter_marks_come_from_the_store(store):
    ex = explore(store, "pypi")
    assert ex.search.state.wait_schema(60)  # the search panel's schema fills the map's colour menu too
    assert [v for _, v in ex.map.color_box.options] == ["", "month", "name", "rank", "version"]
    ex.map.color_box.value = "rank"
    assert ex.map.state.color_spec()["kind"] == "numeric"
    ex.search.query_box.value = "http"
    ex.search.add_condition("rank", "lte", 100)
    ex.search.search_button.click()
    stored = store.read_columns("pypi")
    kept = {i for i, m in zip(stored.ids, stored.metadatas) if m["rank"] <= 100}
    assert {ex.map.state.ids[r] for r in ex.map.state.kept} == kept


def test_the_points_buffer_goes_again_only_when_the_kept_points_change(memory_store, monkeypatch):
    """The points a filter excluded are drawn faint: a new points buffer (16 bytes a point) when the
    kept points change, none for another search keeping the same ones, none when the filter goes."""
    from jscatter.widget import JupyterScatter

    ex = explore(memory_store, "pypi")
    assert ex.search.state.wait_schema(60)
    ranks = [m["rank"] for m in memory_store.read_columns("pypi", columns=["metadatas"]).metadatas]
    sent = []
    monkeypatch.setattr(JupyterScatter, "send_state", lambda self, key=None: sent.append({key} if isinstance(key, str) else set(key or ["(every trait)"])))

    def points_sent() -> int:
        return sum("points" in keys for keys in sent)

    def faint() -> int:
        """Points the browser's buffer marks excluded (its opacity column is the view's "kept" column)."""
        kept = ex.map._df["kept"].to_numpy()
        assert any(np.array_equal(ex.map.plot.points[:, c], kept) for c in (2, 3))
        return int((kept == 0).sum())

    row = ex.search.add_condition("rank", "lte", 100)
    for query in ("http", "json parser", "plot"):
        ex.search.query_box.value = query
        ex.search.search_button.click()
    assert points_sent() == 1 and faint() == sum(r > 100 for r in ranks)
    row.editors[0].value = "50"  # another filter, typed in its box: other points kept
    ex.search.search_button.click()
    assert points_sent() == 2 and faint() == sum(r > 50 for r in ranks)
    ex.search.clear_button.click()  # no search: every point normal again, by one scalar
    assert points_sent() == 2 and ex.map.state.kept is None


def test_the_browser_reads_its_first_page_when_its_section_opens(store):
    ex = explore(store, "pypi")
    assert not ex.browser.state.page_loaded and ex.browser.state.rows == []  # not read before the map is shown
    assert "Reading the first page" in ex.browser.table.widget.empty
    ex.widget.children[-1].selected_index = 0  # the user opens "Workspace browser"
    assert ex.browser.state.page_loaded and len(ex.browser.state.rows) == 20 and len(ex.browser.table.ids) == 20
    assert ex.browser.state.rows[0].unique_id == store.read_columns("pypi", limit=1).ids[0]


def test_a_schema_that_cannot_be_read_is_said_in_the_filter_section_and_under_the_map(memory_store, monkeypatch):
    from vecbook.errors import BackendUnavailableError
    from vecbook.widgets import search_state

    def unreachable(store, workspace_id):
        raise BackendUnavailableError("the server at localhost:6333 does not answer")

    monkeypatch.setattr(search_state, "introspect_workspace", unreachable)  # a backend going away mid-session
    ex = explore(memory_store, "pypi")
    assert not ex.search.state.wait_schema(30)
    assert isinstance(ex.search.state.schema_error, BackendUnavailableError)
    assert "could not be read" in ex.search.filters.schema_note.value and "does not answer" in ex.search.filters.schema_note.value
    assert ex.map.state.fields == [] and [v for _, v in ex.map.color_box.options] == [""]
    assert "no fields to colour by" in ex.map.status_html.value and "does not answer" in ex.map.status_html.value
    assert ex.map.state.n_points == 300  # the map works without fields


def _count_embedded(model, monkeypatch) -> list[str]:
    """The texts ``model`` embeds from now on (its cache answers the rest)."""
    embedded: list[str] = []
    embed = model.embed_batch

    def counting(texts):
        embedded.extend(texts)
        return embed(texts)

    monkeypatch.setattr(model, "embed_batch", counting)
    return embedded


def test_a_search_embeds_its_query_once_even_without_a_cache(store, monkeypatch):
    """The search and the map's query marker share one embedding: a paid API is called once per
    search, also with ``cache_size=0`` (the hashing model's default). A hybrid search without a
    cache leaves the marker off rather than embed again; with a cache, the cached vector is used."""
    model = store.embedding_model
    assert model.cache.max_items == 0
    ex = explore(store, "pypi", top_k=5)
    embedded = _count_embedded(model, monkeypatch)
    ex.search.query_box.value = "http client library"
    assert embedded == ["http client library"]
    assert ex.search.state.query_vector is not None and ex.map.state.query_xy is not None
    assert [h.unique_id for h in ex.search.state.results] == [h.unique_id for h in store.search("http client library", "pypi", top_k=5)]
    embedded.clear()
    ex.search.mode_box.value = "hybrid"
    assert embedded == ["http client library"] and ex.search.state.results
    assert ex.search.state.query_vector is None  # the marker sits among the hits, as for a keyword search
    hits = ex.map.state.coords[ex.map.state.highlight_indices, :2]
    x, y = ex.map.state.query_xy
    assert hits[:, 0].min() <= x <= hits[:, 0].max() and hits[:, 1].min() <= y <= hits[:, 1].max()

    model.cache.max_items = 10
    embedded.clear()
    ex.search.query_box.value = "plotting charts"
    assert embedded == ["plotting charts"] and ex.search.state.query_vector is not None
    assert np.allclose(ex.search.state.query_vector, model.embed_batch(["plotting charts"])[0])


def test_a_search_puts_its_query_on_the_map_at_its_own_projection(store):
    """On PCA the query is projected like a point: searching a node's exact text puts it on that
    node's point; a keyword search embeds nothing and sits among its hits."""
    ex = explore(store, "pypi", top_k=5)
    rows = store.read_columns("pypi", node_ids=["requests"], columns=["ids", "contents"])
    row = ex.map.state.row_of["requests"]
    ex.search.query_box.value = rows.contents[0]
    assert ex.search.state.query_vector is not None
    assert np.allclose(ex.map.state.query_xy, ex.map.state.coords[row, :2], atol=1e-3)
    far = ex.map.state.coords[ex.map.state.highlight_indices, :2].mean(axis=0)
    assert not np.allclose(ex.map.state.query_xy, far, atol=1e-3)  # not the mean of its hits
    ex.search.clear()
    assert ex.map.state.query_xy is None and ex.search.state.query_vector is None
