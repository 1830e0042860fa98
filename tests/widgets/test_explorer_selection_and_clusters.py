"""The explorer's cluster labels toggle and its selection actions (tag, selection as filter), driven without a browser."""

from __future__ import annotations

import pytest

from vecbook.errors import ValidationError
from vecbook.widgets import explore

pytest.importorskip("sklearn", reason="cluster labels need scikit-learn (the notebook extra)")


def _drawn_labels(ex) -> set[str]:
    """The label texts the plot draws (the two blank corner labels that fix the frame left out)."""
    labels = ex.map.plot.labels
    return set() if labels is None else {t for t in labels["label"] if t.strip()}


def test_cluster_labels_toggle_follows_the_layout_and_a_reload(store):
    ex = explore(store, "pypi")
    assert not ex.map.labels_box.value and ex.map.plot.labels is None
    frame = ex.clusters  # readable without drawing them
    assert list(frame.columns) == ["cluster", "label", "terms", "size", "x", "y"] and frame["size"].sum() == 300
    ex.map.labels_box.value = True  # the "cluster labels" box
    assert _drawn_labels(ex) == set(frame["label"]) and len(frame) >= 2
    pca_labels = ex.map.state.labels

    ex.map.state.cache.put(ex.map.state._key("umap"), ex.map.state.coords[:, ::-1].copy())  # a UMAP layout, cached
    ex.map.method_box.value = "umap"
    assert ex.map.state.method == "umap" and ex.map.labels_box.value
    umap_frame = ex.clusters
    assert ex.map.state.labels != pca_labels  # placed on the new layout
    assert _drawn_labels(ex) == set(umap_frame["label"])
    assert sorted(ex.map.state.labels) == sorted(zip(umap_frame["x"], umap_frame["y"], umap_frame["label"]))

    ex.map.reload()  # a reload keeps them on, drawn on the reloaded map
    assert ex.map.labels_box.value and _drawn_labels(ex) == set(ex.clusters["label"])
    ex.map.labels_box.value = False
    assert _drawn_labels(ex) == set() and ex.map.state.labels == []
    ex.map.show_cluster_labels(True)  # from Python: the box follows
    assert ex.map.labels_box.value and _drawn_labels(ex)


def test_labels_drawn_from_code_stay_when_cluster_labels_go_off(memory_store):
    ex = explore(memory_store, "pypi")
    ex.map.draw_labels([0.0], [0.0], ["mine"])
    ex.map.show_cluster_labels(False)
    assert _drawn_labels(ex) == {"mine"}


def test_cluster_labels_without_scikit_learn_say_so(memory_store, monkeypatch):
    import sys

    ex = explore(memory_store, "pypi")
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)  # as if scikit-learn were not installed
    ex.map.labels_box.value = True
    assert ex.map.plot.labels is None and "no cluster labels: MissingDependencyError" in ex.map.status_html.value
    assert "notebook" in ex.map.status_html.value  # names the extra


def test_tag_selection_button_makes_a_filter_field_and_a_colour(store):
    ex = explore(store, "pypi")
    assert "label" not in ex.map.state.fields and ex.actions.tag_button.disabled
    ex.map.select(["boto3", "requests", "numpy"])
    assert ex.actions.state.ids == ["boto3", "numpy", "requests"] and not ex.actions.tag_button.disabled
    ex.actions.field_box.value, ex.actions.value_box.value = "label", "spam"
    ex.actions.tag_button.click()
    assert ex.actions.state.message.startswith("tagged 3 node(s) with label='spam'") and "tagged 3" in ex.actions.output.value
    assert sorted(n.unique_id for n in store.search("x", "pypi", top_k=10, filter_dict={"label": "spam"})) == ["boto3", "numpy", "requests"]
    # Without reopening: the colour menu and the filter fields offer the new field, the selection stays.
    assert ("label", "label") in ex.map.color_box.options
    assert ("label",) in ex.search.state.schema.fields
    assert ex.map.state.selected_ids == ["boto3", "numpy", "requests"]
    ex.map.color_box.value = "label"
    enc = ex.map.state.color_encoding()
    assert enc["kind"] == "category" and enc["labels"] == ["spam", "(missing)"]
    ex.search.filters.text.value = "{'label': 'spam'}"
    ex.search.query_box.value = "web framework"
    ex.search.search_button.click()
    assert sorted(h.unique_id for h in ex.search.state.results) == ["boto3", "numpy", "requests"]


def test_selection_as_filter_from_the_button_and_from_python(memory_store):
    ex = explore(memory_store, "pypi")
    ex.map.select(["requests", "boto3"])
    ex.actions.code_button.click()  # "Selection as filter"
    assert ex.actions.state.code == "filter_dict={'name': ['boto3', 'requests']}"
    assert "filter_dict={&#x27;name&#x27;: [&#x27;boto3&#x27;, &#x27;requests&#x27;]}" in ex.actions.output.value
    assert ex.selection_filter() == {"name": ["boto3", "requests"]}
    assert ex.tag_selection("review", 2) == 2
    assert sorted(ex.selection["review"]) == [2, 2] and ex.map.state.selected_ids == ["boto3", "requests"]
    ex.map.select([])
    with pytest.raises(ValidationError, match="selection is empty"):
        ex.tag_selection("review", 3)


def test_a_reload_or_a_tag_closes_the_old_plot(memory_store):
    """Each rebuilt plot replaces the old one, which is closed: nothing piles up in the kernel or in a page reload."""
    ex = explore(memory_store, "pypi")
    first = ex.map.plot
    ex.map.reload()
    ex.map.select(["boto3"])
    ex.tag_selection("label", "x")
    assert first.comm is None and ex.map.plot.comm is not None  # closed; the new one open
    assert list(ex.map.figure_box.children) == [ex.map.plot]
