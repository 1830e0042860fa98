"""Cluster labels computed locally: k-means on the layout, labels from each cluster's distinctive terms."""

from __future__ import annotations

import numpy as np
import pytest

from vecbook import HashEmbeddingModel
from vecbook.datasets import load_pypi_sample
from vecbook.widgets.clusters import cluster_labels, default_cluster_count

pytest.importorskip("sklearn", reason="cluster labels need scikit-learn (the notebook extra)")


@pytest.fixture(scope="module")
def sample():
    """The 3,000 PyPI packages: summaries, names, bag-of-words vectors and their PCA layout."""
    nodes = load_pypi_sample()
    texts = [n.content for n in nodes]
    vectors = np.asarray(HashEmbeddingModel(dimensions=256).get_embeddings(texts), dtype=np.float32)
    centred = vectors - vectors.mean(axis=0)
    layout = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    return texts, [n.metadata["name"] for n in nodes], vectors, layout


def test_labels_name_what_the_clusters_hold(sample):
    texts, names, vectors, layout = sample
    frame, assignment = cluster_labels(layout, texts, n_clusters=30, vectors=vectors)
    assert list(frame.columns) == ["cluster", "label", "terms", "size", "x", "y"]
    assert len(assignment) == 3000 and frame["size"].sum() == 3000 and len(frame) == 30
    assert frame["size"].is_monotonic_decreasing
    terms = {c: set(t) for c, t in zip(frame["cluster"], frame["terms"])}
    web = terms[assignment[names.index("flask")]]
    assert assignment[names.index("flask")] == assignment[names.index("django")]  # the web frameworks together
    assert web & {"web", "http", "framework", "asgi", "wsgi"}, web
    azure = terms[assignment[names.index("azure-core")]]
    assert azure & {"azure", "microsoft"}, azure
    assert not any(t & {"the", "and", "for", "python", "library"} for t in terms.values())  # no filler words
    for row in frame.itertuples():  # the centre is the mean of the cluster's points on the layout
        members = layout[assignment == row.cluster]
        assert (row.x, row.y) == pytest.approx(tuple(members.mean(axis=0)), rel=1e-4, abs=1e-6)


def test_on_the_layout_alone(sample):
    texts, _names, _, layout = sample
    result = cluster_labels(layout, texts)
    assert len(result.frame) == default_cluster_count(3000) == 14
    assert all(label and "," in label for label in result.frame["label"])
    first = result.label_of(0)
    assert first in set(result.frame["label"])
    again = cluster_labels(layout, texts)  # deterministic for a given seed
    assert (again.assignment == result.assignment).all()


def test_edge_cases():
    assert len(cluster_labels(np.zeros((0, 2)), []).frame) == 0
    one = cluster_labels(np.array([[0.0, 1.0]]), ["only one point"])
    assert one.frame["size"].tolist() == [1] and one.frame["label"].iloc[0] == "point"
    empty_texts = cluster_labels(np.random.default_rng(0).normal(size=(50, 2)), [""] * 50, n_clusters=3)
    assert empty_texts.frame["label"].str.startswith("cluster ").all()  # no words: a plain name
    with pytest.raises(ValueError, match="texts for"):
        cluster_labels(np.zeros((3, 2)), ["a"])
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        cluster_labels(np.zeros(3), ["a", "b", "c"])
    assert [default_cluster_count(n) for n in (10, 3000, 50_000, 1_000_000)] == [2, 14, 20, 20]
