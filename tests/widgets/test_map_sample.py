"""load_points: every point up to max_points; above it a stratified sample whose details alone are read."""

from __future__ import annotations

import numpy as np

from vecbook.widgets.map_sample import load_points, stratified_rows


def test_a_sample_reads_details_of_the_sampled_points_only(store):
    full = store.read_columns("pypi")
    by_id = {i: (c, m, v) for i, c, m, v in zip(full.ids, full.contents, full.metadatas, full.vectors)}
    ids, contents, metadatas, vectors, total = load_points(store, "pypi", max_points=100)
    assert total == 300 and len(ids) == len(contents) == len(metadatas) == len(vectors) == 100
    assert ids == sorted(ids)
    expected = sorted(full.ids[r] for r in stratified_rows(full.ids, full.vectors, 100).tolist())
    assert ids == expected  # the same stratified sample as before
    for i, c, m, v in zip(ids, contents, metadatas, vectors):
        assert (c, m) == by_id[i][:2] and np.array_equal(v, by_id[i][2])


def test_up_to_max_points_every_point_in_id_order(store):
    ids, contents, metadatas, vectors, total = load_points(store, "pypi", max_points=300)
    assert total == len(ids) == 300 and ids == sorted(ids) and vectors.shape[0] == 300
    again = load_points(store, "pypi")
    assert again[0] == ids and np.array_equal(again[3], vectors)
