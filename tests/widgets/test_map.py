"""MapState and EmbeddingMap: projections and their cache, UMAP in a child process, colours, highlight,
selection (from Python and from the plot's messages), neighbours, sampling."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import vecbook
from vecbook import HashEmbeddingModel
from vecbook.datasets import build_sample_workspace
from vecbook.widgets import EmbeddingMap, MapState
from vecbook.widgets.map_colors import scaled
from vecbook.widgets.map_sample import id_hash_fractions, strata_codes, stratified_rows
from vecbook.widgets.projection import ProjectionCache, fingerprint, pca

from .conftest import DIMS


def test_points_projection_and_status(store):
    state = MapState(store, "pypi")
    assert state.n_points == state.total == 300 and not state.sampled
    assert state.ids == sorted(state.ids) and state.vectors.shape == (300, DIMS)
    assert state.coords.shape == (300, 2) and state.method == "pca"
    assert state.describe() == "300 points, PCA 2-D"
    assert state.fields == ["month", "name", "rank", "version"]


def test_pca_is_deterministic_and_centred():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 16)).astype(np.float32) * np.arange(1, 17, dtype=np.float32)
    a, b = pca(x), pca(x.copy())
    assert np.array_equal(a, b) and abs(a.mean()) < 1e-3
    assert a[:, 0].var() > a[:, 1].var() > 0  # the first component carries the most variance
    big = rng.normal(size=(30_000, 8)).astype(np.float32)
    assert pca(big, 3).shape == (30_000, 3)  # fitted on a subset, every row projected
    assert pca(np.zeros((1, 4), np.float32)).shape == (1, 2)


def test_fingerprint_is_the_same_on_every_backend(tmp_path):
    stores = [vecbook.MemoryVectorStore(embedding_model=HashEmbeddingModel(dimensions=DIMS)),
              vecbook.LocalVectorStore(embedding_model=HashEmbeddingModel(dimensions=DIMS), store_dir=str(tmp_path / "l"))]
    for s in stores:
        build_sample_workspace(s, "pypi", limit=100)
    a, b = (MapState(s, "pypi") for s in stores)
    assert a.fingerprint == b.fingerprint == fingerprint(a.ids, a.vectors)
    stores[0].delete(["boto3"], "pypi")
    assert MapState(stores[0], "pypi").fingerprint != a.fingerprint


def test_projections_are_cached_by_content(memory_store, monkeypatch):
    from vecbook.widgets import map_layout

    calls = []
    real = map_layout.pca
    monkeypatch.setattr(map_layout, "pca", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = MapState(memory_store, "pypi")
    second = MapState(memory_store, "pypi")  # reopened: no recomputation
    assert len(calls) == 1 and np.array_equal(first.coords, second.coords)
    memory_store.delete(["boto3"], "pypi")
    MapState(memory_store, "pypi")
    assert len(calls) == 2


def test_umap_runs_in_a_process_with_progress_and_is_cached(memory_store, fake_umap, tmp_path):
    fake_umap.hold()  # hold the fit until the test has looked at the running state
    state = MapState(memory_store, "notes", cache_dir=tmp_path / "proj")
    events = []
    state.on("progress", lambda f, m: events.append((f, m)))
    state.on("coords", lambda: events.append("coords"))
    state.show("umap")
    assert state.job.running and state.method == "pca"  # PCA stays on screen meanwhile
    assert state.job._thread is not threading.current_thread()
    fake_umap.release()
    assert state.wait_for_umap(60)
    assert state.method == "umap" and events[-1] == "coords"
    fractions = [e[0] for e in events if isinstance(e, tuple)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("epoch" in e[1] for e in events if isinstance(e, tuple))
    assert np.allclose(state.coords, state.vectors[:, :2] * 10)
    [call] = fake_umap.calls()
    shape, low, high = call["init"]
    assert shape == [20, 2] and low >= -1e-3 and high <= 10 + 1e-3  # seeded from PCA

    again = MapState(memory_store, "notes", cache_dir=tmp_path / "proj")
    again.show("umap")  # from the in-memory cache: no new fit
    assert again.method == "umap" and len(fake_umap.calls()) == 1
    ProjectionCache.clear_memory()
    third = MapState(memory_store, "notes", cache_dir=tmp_path / "proj")
    assert third.cached("umap")  # from disk, as in a new kernel
    third.show("umap")
    assert len(fake_umap.calls()) == 1 and np.array_equal(third.coords, state.coords)


def test_umap_failure_is_reported(memory_store, fake_umap):
    fake_umap.fail("numba exploded")
    state = MapState(memory_store, "notes", cache_dir=False)
    messages = []
    state.on("progress", lambda f, m: messages.append(m))
    state.show("umap")
    state.wait_for_umap(60)
    assert state.method == "pca" and "RuntimeError: numba exploded" in state.error
    assert any("failed" in m for m in messages)


def test_umap_on_a_sample_draws_the_fitted_points_first_then_every_point(memory_store, fake_umap):
    m = EmbeddingMap(memory_store, "pypi", umap_params={"sample_size": 100}, cache_dir=False)
    s, seen = m.state, []
    s.on("coords", lambda: seen.append((s.method, None if s.placed is None else s.placed.copy(), s.coords.copy(),
                                         m.plot.filter, s.describe())))
    m.show_umap(wait=True, timeout=120)
    assert [method for method, *_ in seen] == ["umap", "umap"]
    (_, placed, early, drawn, line), (_, placed_after, final, drawn_after, line_after) = seen
    assert placed.sum() == 100 and placed_after is None
    assert drawn.tolist() == np.flatnonzero(placed).tolist() and drawn_after is None  # the rest hidden, then shown
    assert "100 fitted points shown while the rest are placed" in line and "fitted" not in line_after
    assert np.allclose(early[placed], s.vectors[placed, :2] * 10)  # the (stand-in) UMAP layout of the sample
    assert np.array_equal(early[placed], final[placed])  # the sample stays where it was drawn


def test_unknown_umap_params_are_refused(memory_store):
    with pytest.raises(ValueError, match="unknown umap_params 'n_neighbours'; known: n_neighbors"):
        MapState(memory_store, "pypi", umap_params={"n_neighbours": 5})


def test_a_umap_failing_after_its_sample_was_drawn_goes_back_to_pca(memory_store, fake_umap):
    fake_umap.hold()
    s = MapState(memory_store, "pypi", umap_params={"sample_size": 100}, cache_dir=False)
    s.show("umap")
    rows = np.arange(0, 300, 3)
    s.job.on_partial(rows, np.ones((100, 2), np.float32))  # what the layout process reports once the sample is fitted
    assert s.method == "umap" and s.placed.sum() == 100
    fake_umap.fail("placing failed")
    fake_umap.release()
    assert s.wait_for_umap(60)
    assert s.method == "pca" and s.placed is None and "placing failed" in s.error
    assert np.array_equal(s.coords, s.projection("pca"))


def test_colour_specs(memory_store):
    state = MapState(memory_store, "notes")
    assert state.color_spec() == {"kind": "none"}
    state.set_color("year")
    spec = state.color_spec()
    assert spec["kind"] == "numeric" and spec["values"].tolist() == list(range(2000, 2020))
    state.set_color("topic")
    spec = state.color_spec()
    assert spec["kind"] == "category" and spec["labels"] == ["ai", "food", "music", "travel"]
    assert spec["codes"].tolist()[:4] == [0, 1, 3, 2]
    state.set_color("published")  # 17 dates and 3 missing
    spec = state.color_spec()
    assert spec["kind"] == "ordinal" and np.isnan(spec["values"]).sum() == 3 and spec["ticktext"][0] == "2026-01-13"
    big = MapState(memory_store, "pypi")
    big.set_color("version")  # many distinct strings: top categories + other
    spec = big.color_spec()
    assert spec["labels"][-1] == "other" and len(spec["labels"]) == 12
    with pytest.raises(KeyError, match="no metadata field"):
        big.set_color("nope")


def test_selection_from_python(store):
    state = MapState(store, "notes")
    state.select(["n03", "n01", "nope", 5, 99])
    assert state.selected == [1, 3, 5] and state.selected_ids == ["n01", "n03", "n05"]
    df = state.selection
    assert df["id"].tolist() == ["n01", "n03", "n05"] and {"topic", "author.name"} <= set(df.columns)
    state.select([])
    assert state.selected == []


def test_selection_frame_is_the_stored_rows_small_or_large(store):
    state = MapState(store, "pypi")
    for rows in ([3, 40, 41], list(range(0, 300, 2))):  # fetched by id; read as whole columns (over 1/20 of the workspace)
        state.select(rows)
        df = state.selection
        nodes = store.get([state.ids[r] for r in rows], "pypi")
        assert df["id"].tolist() == [n.unique_id for n in nodes] and df["content"].tolist() == [n.content for n in nodes]
        assert df["rank"].tolist() == [n.metadata["rank"] for n in nodes] and len(df) == len(rows)


def test_highlight_and_neighbours(store):
    state = MapState(store, "pypi", neighbours_k=5)
    hits = store.search("http client", "pypi", top_k=4)
    state.highlight(hits)
    assert [state.ids[i] for i in state.highlight_indices] == [h.unique_id for h in hits]
    assert list(state.highlighted.values()) == [h.score for h in hits]
    neighbours = state.click(hits[0].unique_id)
    assert len(neighbours) == 5 and hits[0].unique_id not in {n.unique_id for n in neighbours}
    scores = [n.score for n in neighbours]
    assert scores == sorted(scores, reverse=True)
    assert state.click(10_000) == [] and "no point" in state.error
    state.clear_highlight()
    assert state.highlight_indices == []


def test_neighbour_errors_are_shown(flaky_store):
    m = EmbeddingMap(flaky_store, "notes")
    flaky_store.down = True
    m.state.click(0)
    assert "BackendUnavailableError" in m.neighbours_html.value
    flaky_store.down = False
    m.state.click(0)
    assert "Nearest neighbours of" in m.neighbours_html.value


def test_sampling_is_deterministic_and_said(memory_store):
    a = MapState(memory_store, "pypi", max_points=100)
    b = MapState(memory_store, "pypi", max_points=100)
    assert a.n_points == 100 and a.sampled and a.ids == b.ids
    assert "100 of 300 points (a stratified sample)" in a.describe()
    m = EmbeddingMap(memory_store, "pypi", max_points=100)
    assert "stratified sample" in m.status_html.value
    m.highlight(memory_store.search("http", "pypi", top_k=30))
    assert "not in the sample" in m.status_html.value


# ---- sampling and colour scales -----------------------------------------------------------


def test_stratified_sample_keeps_a_small_group_a_random_one_loses():
    """40,000 points in one big group and 60 in a distinct small one; a 10% budget."""
    rng = np.random.default_rng(3)
    big = rng.normal(size=(40_000, 16)) + 5 * np.eye(16)[0]
    small = rng.normal(size=(60, 16)) * 0.1 - 5 * np.eye(16)[0]
    vectors = np.vstack([big, small]).astype(np.float32)
    ids = [f"b{i:05d}" for i in range(40_000)] + [f"s{i:02d}" for i in range(60)]
    rows = stratified_rows(ids, strata_codes(vectors), 4000)
    assert len(rows) == 4000 and len(set(rows.tolist())) == 4000
    assert (rows >= 40_000).sum() >= 10  # the small group keeps a floor of points
    plain = np.flatnonzero(id_hash_fractions(ids) < 4000 / len(ids))  # the old sample, by id hash: ~6
    assert (plain >= 40_000).sum() < (rows >= 40_000).sum()
    assert np.array_equal(rows, stratified_rows(list(ids), strata_codes(vectors.copy()), 4000))  # deterministic


def test_colour_scales():
    counts = np.array([1, 2, 3, 10, 100, 1000, 10_000, np.nan])
    lin, log, q = (scaled(counts, s)["t"] for s in ("linear", "log", "quantile"))
    assert np.isnan(lin[-1]) and lin[0] == 0 and lin[-2] == 1
    assert (lin[:5] < 0.02).all()  # linear: a long tail is one colour
    assert np.allclose(log[:7], np.log10(counts[:7]) / 4)  # log: evenly spread decades
    assert np.allclose(q[:7], np.arange(1, 8) / 7)  # quantile: equal shares
    with pytest.raises(ValueError, match="scale must be"):
        scaled(counts, "sqrt")


def test_colour_encoding_for_the_view(memory_store):
    state = MapState(memory_store, "pypi")
    state.set_color("rank", "log")
    enc = state.color_encoding()
    assert enc["kind"] == "numeric" and enc["scale"] == "log" and enc["t"].dtype == np.float32
    assert enc["ticks"][0][1] == "1" and 0 <= np.nanmin(enc["t"]) and np.nanmax(enc["t"]) == 1
    with pytest.raises(ValueError):
        state.set_color("rank", "cubic")


# ---- the widget: a view of the state, and the messages the browser would send ----------------


def test_hover_reads_the_points_content_from_the_store(store):
    m = EmbeddingMap(store, "pypi")
    sent = []
    m.plot.send = lambda content, buffers=None: sent.append(content)
    m.plot._handle_custom_msg({"type": "tooltip", "index": 7, "preview": "content", "properties": ["id"]}, [])  # as the browser asks
    node = store.get([m.state.ids[7]], "pypi")[0]
    assert sent == [{"type": "tooltip", "index": 7, "preview": node.content[:300], "properties": {"id": node.unique_id}}]
    assert "content" not in m._df.columns  # the map holds no contents


def test_widget_draws_state_without_resending_points(store):
    m = EmbeddingMap(store, "pypi")
    w = m.plot
    assert w.points.shape == (300, 4) and "300 points, PCA 2-D" in m.status_html.value
    assert w.tooltip_preview == "content" and m._df["id"].tolist() == m.state.ids  # details asked on hover
    resent = []
    w.observe(lambda c: resent.append(c["name"]), names=["points"])
    results = store.search("http client", "pypi", top_k=6)
    m.highlight(results)
    assert len(w.annotations) == 6 + 6 + 2  # a ring per hit, a line from the query to each, the query's cross
    assert w.opacity == 0.4 and "6 highlighted" in m.status_html.value  # dimmed; colours kept (no colour change)
    m.select(["boto3", "numpy"])
    assert sorted(w.selection.tolist()) == sorted(m.state.row_of[i] for i in ("boto3", "numpy"))
    m.state.click(3)
    m.focus("requests")
    assert w.zoom_to is not None and m.state.row_of["requests"] in w.zoom_to.tolist()
    m.clear_button.click()
    assert m.state.highlighted == {} and w.opacity == 0.85
    assert resent == []  # none of these sent the points again
    m.color_box.value = "version"
    assert resent == ["points"] and w.legend_encoding["color"]["categorical"]
    colours = [c[1] for c in w.legend_encoding["color"]["values"]]
    assert len(set(colours)) == len(colours)  # distinct colours, one per category, in a legend
    m.color_box.value = "rank"
    m.scale_box.value = "quantile"
    assert w.legend_encoding["color"]["variable"] == "rank (quantile)"
    assert not w.legend_encoding["color"]["categorical"]  # a number's legend, no category labels left over


def test_widget_reads_lassos_and_clicks_from_the_plot(store):
    m = EmbeddingMap(store, "pypi", neighbours_k=4)
    w = m.plot
    w.selection = np.arange(40, 90, dtype=np.int32)  # what the browser sends after a lasso
    assert m.state.selected == list(range(40, 90)) and m.state.clicked is None
    assert "50 selected" in m.status_html.value and "50 point(s) selected" in m.selection_html.value
    w.selection = np.array([7], dtype=np.int32)  # a click selects one point
    assert m.state.clicked == m.state.ids[7] and m.neighbours_html.value.count("<tr data-id=") == 4
    m.select([1, 2, 3])  # from Python: the plot follows
    assert w.selection.tolist() == [1, 2, 3]
    m.select([])
    assert not len(w.selection)


def test_widget_filter_query_labels(store):
    m = EmbeddingMap(store, "pypi")
    m.show_filter({"rank": {"lte": 100}})
    kept = sum(1 for meta in store.read_columns("pypi").metadatas if meta["rank"] <= 100)
    assert len(m.state.kept) == kept > 50 and f"filter keeps {kept}" in m.status_html.value
    assert m.plot.opacity_by in ("valueA", "valueB") and set(m._df["kept"].unique()) == {0.0, 1.0}
    m.show_filter(None)
    assert m.state.kept is None and m.plot.opacity_by is None
    hits = store.search("web framework", "pypi", top_k=5)
    m.highlight(hits)
    xs = m.state.coords[m.state.highlight_indices, 0]
    assert xs.min() - 1e-6 <= m.state.query_xy[0] <= xs.max() + 1e-6  # among its hits
    vector = store.embedding_model.embed_batch(["web framework"])[0]
    m.highlight(hits, query_vector=vector)  # on PCA, the query's own projection
    from vecbook.widgets.projection import pca

    both = pca(np.vstack([m.state.vectors, vector[None, :]]))
    assert m.state.query_xy is not None and np.isfinite(m.state.query_xy).all() and both.shape[0] == 301
    m.draw_labels([0.0, 0.1], [0.0, 0.1], ["alpha", "beta"])
    assert {"alpha", "beta"} <= set(m.plot.labels["label"])
    m.draw_labels([], [], [])
    assert not [t for t in m.plot.labels["label"] if t.strip()]  # only blank labels left: the browser clears the old ones


def test_projection_controls(memory_store, fake_umap):
    m = EmbeddingMap(memory_store, "notes", cache_dir=False)
    m.method_box.value = "umap"
    m.state.wait_for_umap(60)
    deadline = time.monotonic() + 5
    while m.state.method != "umap" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.method_box.value == "umap" and "UMAP 2-D" in m.status_html.value
    assert np.allclose(m._df["x"].to_numpy(), m.state.vectors[:, 0] * 10)
    assert "done in" in m.progress_label.value and m.progress.layout.display == "none"
    m.method_box.value = "pca"
    assert m.state.method == "pca" and "PCA" in m.status_html.value


def test_reload_follows_changes(memory_store):
    m = EmbeddingMap(memory_store, "notes")
    memory_store.delete(["n00", "n01"], "notes")
    m.reload_button.click()
    assert m.state.n_points == 18 and m.plot.points.shape[0] == 18


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_real_umap_fit(memory_store, tmp_path):
    """umap-learn itself (the first fit in a process compiles numba code: up to ~90 s)."""
    pytest.importorskip("umap")
    state = MapState(memory_store, "pypi", cache_dir=tmp_path / "proj")
    state.show("umap")
    assert state.wait_for_umap(560), "UMAP did not finish"
    assert state.error is None and state.method == "umap" and state.coords.shape == (300, 2)
    assert np.isfinite(state.coords).all()


def test_umap_cache_key_follows_the_layout_method(store, monkeypatch):
    from vecbook.widgets import projection

    state = MapState(store, "notes")
    key = state._key("umap")
    monkeypatch.setattr(projection, "LAYOUT_VERSION", "another-layout")
    assert state._key("umap") != key  # a layout made another way is never read back from the cache
    assert state._key("pca") == MapState(store, "notes")._key("pca")


def test_a_closed_lasso_keeps_its_points_and_clicks_still_select(memory_store):
    """The map's lasso has no click-to-start initiator, so a click held long still selects; the click that
    regl-scatterplot adds where a closed lasso ended does not replace the lasso's points."""
    m = EmbeddingMap(memory_store, "pypi")
    assert m.plot.lasso_initiator is False and m.plot.lasso_on_long_press is False
    xy = m.state.coords[:, :2]
    start = xy[12] + 1e-4
    circle = [start + 0.1 * np.ptp(xy, axis=0) * (np.cos(a) - 1, np.sin(a)) for a in np.linspace(0, 2 * np.pi, 20)]
    lassoed = sorted(set(range(10, 40)) | {12})
    m.plot.selection = np.asarray(lassoed, dtype=np.int32)  # what the browser sends at the lasso's end: its points,
    m.plot.set_trait("lasso_selection_polygon", np.asarray(circle, dtype=np.float32))  # its polygon (read-only here),
    m.plot.selection = np.array([12], dtype=np.int32)  # and the click where it began and ended
    assert m.state.selected == lassoed and sorted(m.plot.selection.tolist()) == lassoed and m.state.clicked is None
    far = int(np.argmax(np.linalg.norm(xy - start, axis=1)))
    m.plot.selection = np.array([far], dtype=np.int32)  # a user's click, elsewhere
    assert m.state.selected == [far] and m.state.clicked == m.state.ids[far] and m.state.neighbours
    m.plot.selection = np.asarray(lassoed, dtype=np.int32)  # a lasso that did not end where it began: no click follows,
    m.plot.set_trait("lasso_selection_polygon", np.asarray(circle[:10], dtype=np.float32))
    m.plot.selection = np.array([far], dtype=np.int32)  # so the next click, away from its start, selects
    assert m.state.selected == [far]


def test_each_change_reaches_the_browser_in_one_message(memory_store, fake_umap, monkeypatch):
    """What one action changes on the plot goes in one message, drawn in one frame: sent trait by trait, a
    colour change drew the new colour map over the old values first (a frame of wrong colours, about a
    second at a million points in software WebGL), and a first search's rings and dimming came a frame apart."""
    from jscatter.widget import JupyterScatter

    m = EmbeddingMap(memory_store, "pypi", umap_params={"sample_size": 100}, cache_dir=False)
    sent = []
    monkeypatch.setattr(JupyterScatter, "send_state", lambda self, key=None: sent.append(
        {key} if isinstance(key, str) else set(key or ["(every trait)"])))

    def messages(action) -> list[set]:
        sent.clear()
        action()
        return list(sent)

    assert [{"points", "color", "legend_encoding"} <= keys for keys in messages(lambda: m.state.set_color("version"))] == [True]
    assert [{"annotations", "opacity"} <= keys for keys in messages(lambda: m.highlight(memory_store.search("http client", "pypi", top_k=5)))] == [True]
    assert len(messages(lambda: m.state.click(3))) == 1
    assert len(messages(lambda: m.focus("requests"))) == 1
    assert len(messages(lambda: m.show_filter({"rank": {"$lte": 100}}))) == 1
    assert len(messages(lambda: m.select(["boto3", "numpy"]))) == 1
    assert len(messages(lambda: m.clear_search())) == 1


def test_only_a_new_layout_is_animated(memory_store, fake_umap, monkeypatch):
    """The points glide to a new layout; a colour or a filter after it is drawn at once (jupyter-scatter
    left its animation on, and the colours faded through the wrong categories for 3 seconds)."""
    from jscatter.widget import JupyterScatter

    m = EmbeddingMap(memory_store, "pypi", cache_dir=False)
    animated = []  # whether the browser animates each points buffer it is sent
    send = JupyterScatter.send_state

    def record(self, key=None):
        keys = {key} if isinstance(key, str) else set(key or [])
        if "points" in keys:
            animated.append(self.transition_points)
        return send(self, key)

    monkeypatch.setattr(JupyterScatter, "send_state", record)
    m.show_umap(wait=True, timeout=120)
    m.state.set_color("version")
    m.show_filter({"rank": {"$lte": 100}})
    assert m.state.method == "umap" and animated == [True, False, False]


def test_a_reload_keeps_the_selection_and_the_new_plot_starts_with_it(memory_store, monkeypatch):
    """The rebuilt plot's first message carries its points, colours and selection: nothing is resent
    after it (each resend was the whole points buffer, and a selection sent before the browser had
    drawn the points was never drawn)."""
    from jscatter.widget import JupyterScatter

    m = EmbeddingMap(memory_store, "pypi")
    m.state.set_color("version")
    m.select(["boto3", "requests", "numpy"])
    memory_store.delete(["numpy"], "pypi")
    sent = []
    monkeypatch.setattr(JupyterScatter, "send_state", lambda self, key=None: sent.append((self, key)))
    m.reload()
    assert m.state.selected_ids == ["boto3", "requests"]  # the points still there
    assert sorted(m.plot.selection.tolist()) == m.state.selected
    assert m.plot.points.shape[0] == m.state.n_points and len(np.unique(m.plot.points[:, 2])) > 1  # coloured
    resent = set()
    for plot, key in sent:
        if plot is m.plot:
            resent.update([key] if isinstance(key, str) else key or ["(every trait)"])
    assert not resent & {"points", "selection", "(every trait)"}
