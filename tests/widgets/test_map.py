"""MapState and EmbeddingMap: projections and their cache, UMAP in a thread, colours, highlight,
selection (from Python and from the plot's messages), neighbours, sampling."""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import time
import types

import numpy as np
import pytest

import vecbook
from vecbook import HashEmbeddingModel
from vecbook.datasets import build_sample_workspace
from vecbook.widgets import EmbeddingMap, MapState
from vecbook.widgets.map_state import points_in_selections
from vecbook.widgets.projection import ProjectionCache, fingerprint, pca

from .conftest import DIMS


@pytest.fixture
def fake_umap(monkeypatch):
    """A stand-in for umap-learn with the same hooks (its epochs loop iterates ``umap.layouts.tqdm``)."""
    layouts = types.ModuleType("umap.layouts")
    layouts.tqdm = lambda iterable, **kwargs: iterable
    umap = types.ModuleType("umap")
    umap.__spec__ = importlib.machinery.ModuleSpec("umap", None)
    umap.layouts = layouts
    calls = []
    gate = threading.Event()
    gate.set()

    class UMAP:
        def __init__(self, n_components=2, init="spectral", **kwargs):
            self.n_components, self.init, self.kwargs = n_components, init, kwargs
            calls.append(self)

        def fit_transform(self, x):
            gate.wait(10)
            for _ in sys.modules["umap.layouts"].tqdm(range(20)):
                time.sleep(0.001)
            return np.asarray(x, dtype=np.float32)[:, : self.n_components] * 10

    umap.UMAP = UMAP
    monkeypatch.setitem(sys.modules, "umap", umap)
    monkeypatch.setitem(sys.modules, "umap.layouts", layouts)
    return types.SimpleNamespace(calls=calls, gate=gate, layouts=layouts)


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
    from vecbook.widgets import map_state

    calls = []
    real = map_state.pca
    monkeypatch.setattr(map_state, "pca", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = MapState(memory_store, "pypi")
    second = MapState(memory_store, "pypi")  # reopened: no recomputation
    assert len(calls) == 1 and np.array_equal(first.coords, second.coords)
    memory_store.delete(["boto3"], "pypi")
    MapState(memory_store, "pypi")
    assert len(calls) == 2


def test_umap_runs_in_a_thread_with_progress_and_is_cached(memory_store, fake_umap, tmp_path):
    fake_umap.gate.clear()  # hold the fit until the test has looked at the running state
    state = MapState(memory_store, "notes", cache_dir=tmp_path / "proj")
    events = []
    state.on("progress", lambda f, m: events.append((f, m)))
    state.on("coords", lambda: events.append("coords"))
    state.show("umap")
    assert state.job.running and state.method == "pca"  # PCA stays on screen meanwhile
    assert state.job._thread is not threading.current_thread()
    fake_umap.gate.set()
    assert state.wait_for_umap(10)
    assert state.method == "umap" and events[-1] == "coords"
    fractions = [e[0] for e in events if isinstance(e, tuple)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("epoch" in e[1] for e in events if isinstance(e, tuple))
    assert np.allclose(state.coords, state.vectors[:, :2] * 10)
    init = fake_umap.calls[0].init
    assert init.shape == (20, 2) and init.min() >= -1e-3 and init.max() <= 10 + 1e-3  # seeded from PCA
    assert fake_umap.layouts.tqdm is not None and not isinstance(fake_umap.layouts.tqdm, type)  # put back

    again = MapState(memory_store, "notes", cache_dir=tmp_path / "proj")
    again.show("umap")  # from the in-memory cache: no new fit
    assert again.method == "umap" and len(fake_umap.calls) == 1
    ProjectionCache.clear_memory()
    third = MapState(memory_store, "notes", cache_dir=tmp_path / "proj")
    assert third.cached("umap")  # from disk, as in a new kernel
    third.show("umap")
    assert len(fake_umap.calls) == 1 and np.array_equal(third.coords, state.coords)


def test_umap_failure_is_reported(memory_store, fake_umap):
    def boom(self, x):
        raise RuntimeError("numba exploded")

    sys.modules["umap"].UMAP.fit_transform = boom
    state = MapState(memory_store, "notes", cache_dir=False)
    messages = []
    state.on("progress", lambda f, m: messages.append(m))
    state.show("umap")
    state.wait_for_umap(10)
    assert state.method == "pca" and "RuntimeError: numba exploded" in state.error
    assert any("failed" in m for m in messages)


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


def test_selection_from_python_and_from_regions(store):
    state = MapState(store, "notes")
    state.select(["n03", "n01", "nope", 5, 99])
    assert state.selected == [1, 3, 5] and state.selected_ids == ["n01", "n03", "n05"]
    df = state.selection
    assert df["id"].tolist() == ["n01", "n03", "n05"] and {"topic", "author.name"} <= set(df.columns)
    xy = state.coords
    x0, x1 = np.percentile(xy[:, 0], [25, 75])
    y0, y1 = np.percentile(xy[:, 1], [25, 75])
    inside = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).tolist()
    state.select_region([{"type": "rect", "x0": x1, "x1": x0, "y0": y0, "y1": y1}])
    assert state.selected == inside
    lasso = {"type": "path", "path": f"M{x0},{y0}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"}
    assert points_in_selections(xy, [lasso]) == inside
    triangle = {"type": "path", "path": "M0,0L10,0L0,10Z"}
    assert points_in_selections(np.array([[1.0, 1.0], [9.0, 9.0], [-1.0, 1.0]]), [triangle]) == [0]
    state.select_region([])
    assert state.selected == []


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
    assert a.n_points <= 100 and a.n_points > 50 and a.sampled and a.ids == b.ids
    assert f"{a.n_points:,} of 300 points (a fixed random sample)" in a.describe()
    m = EmbeddingMap(memory_store, "pypi", max_points=100)
    assert "fixed random sample" in m.status_html.value
    m.highlight(memory_store.search("http", "pypi", top_k=30))
    assert "not in the sample" in m.status_html.value


# ---- the widget, driven as the browser would ------------------------------------------------


def _points_message(fig, event, trace, indexes):
    fig._js2py_pointsCallback = {
        "event_type": event, "device_state": None, "selector": None,
        "points": {"trace_indexes": [trace] * len(indexes), "point_indexes": list(indexes), "xs": [0.0] * len(indexes), "ys": [0.0] * len(indexes)},
    }


def test_widget_draws_state(store):
    m = EmbeddingMap(store, "pypi")
    base, hits, near = m.fig.data
    assert (base.type, len(base.x), len(base.hovertext)) == ("scattergl", 300, 300)
    assert base.hovertext[0].startswith(f"<b>{m.state.ids[0]}</b>")
    assert "300 points, PCA 2-D" in m.status_html.value
    assert m.color_box.options[0] == ("(none)", "") and ("rank", "rank") in m.color_box.options
    m.color_box.value = "rank"
    assert base.marker.showscale and base.marker.colorbar.title.text == "rank"
    m.color_box.value = ""
    assert not base.marker.showscale

    results = store.search("http client", "pypi", top_k=6)
    m.highlight(results)
    assert len(hits.x) == 6 and base.marker.opacity < 0.5 and len(base.x) == 300  # dimmed, not hidden
    assert hits.hovertext[0].startswith("#1 score ")
    assert "6 highlighted" in m.status_html.value
    m.highlight(None)
    assert len(hits.x) == 0 and base.marker.opacity == 0.8

    m.select(["boto3", "numpy"])
    assert sorted(base.selectedpoints) == sorted(m.state.row_of[i] for i in ("boto3", "numpy"))
    assert "2 point(s) selected" in m.selection_html.value and sorted(m.selection["id"]) == ["boto3", "numpy"]


def test_widget_reads_selections_and_clicks_from_the_plot(store):
    m = EmbeddingMap(store, "pypi", neighbours_k=4)
    xy = m.state.coords
    x0, x1 = np.percentile(xy[:, 0], [30, 70])
    y0, y1 = np.percentile(xy[:, 1], [30, 70])
    path = f"M{x0},{y0}L{x1},{y0}L{x1},{y1}L{x0},{y1}Z"
    # What plotly's widget sends when a lasso ends: the shape in layout.selections ...
    m.fig._js2py_relayout = {"relayout_data": {"selections": [{"xref": "x", "yref": "y", "type": "path", "path": path}]}, "source_view_id": "v"}
    expected = points_in_selections(xy, [{"type": "path", "path": path}])
    assert m.state.selected == expected and len(expected) > 10
    # ... and the selected points (which can arrive or be lost: the same answer either way).
    _points_message(m.fig, "plotly_selected", 0, expected)
    assert m.state.selected == expected
    assert f"{len(expected):,} selected" in m.status_html.value
    m.fig._js2py_relayout = {"relayout_data": {"selections": []}, "source_view_id": "v"}
    assert m.state.selected == []

    _points_message(m.fig, "plotly_click", 0, [7])
    assert m.state.clicked == m.state.ids[7] and m.neighbours_html.value.count("<tr data-id=") == 4
    assert len(m.fig.data[2].x) == 5  # the point and its neighbours ringed
    m.highlight(store.search("web framework", "pypi", top_k=3))
    _points_message(m.fig, "plotly_click", 1, [2])  # a click on the highlight overlay maps back to its point
    assert m.state.clicked == m.state.ids[m.state.highlight_indices[2]]


def test_widget_3d_and_projection_controls(memory_store, fake_umap):
    m = EmbeddingMap(memory_store, "notes", cache_dir=False)
    m.dims_box.value = 3
    assert m.fig.data[0].type == "scatter3d" and len(m.fig.data[0].z) == 20 and "3-D" in m.status_html.value
    m.dims_box.value = 2
    assert m.fig.data[0].type == "scattergl"
    m.method_box.value = "umap"
    m.state.wait_for_umap(10)
    deadline = time.monotonic() + 5
    while m.state.method != "umap" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.method_box.value == "umap" and "UMAP 2-D" in m.status_html.value
    assert np.allclose(np.asarray(m.fig.data[0].x), m.state.vectors[:, 0] * 10)
    assert "done in" in m.progress_label.value and m.progress.layout.display == "none"
    m.method_box.value = "pca"
    assert m.state.method == "pca" and "PCA" in m.status_html.value


def test_reload_follows_changes(memory_store):
    m = EmbeddingMap(memory_store, "notes")
    memory_store.delete(["n00", "n01"], "notes")
    m.reload_button.click()
    assert m.state.n_points == 18 and len(m.fig.data[0].x) == 18


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
