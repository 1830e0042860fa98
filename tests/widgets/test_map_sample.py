"""load_points: ids and vectors of every point up to max_points, above it a stratified sample; details on demand."""

from __future__ import annotations

import numpy as np

from vecbook.widgets import map_sample
from vecbook.widgets.map_sample import load_points, strata_codes, stratified_rows
from vecbook.widgets.map_state import MapState


def test_a_sample_is_stratified_and_its_details_are_the_stored_ones(store):
    full = store.read_columns("pypi")
    by_id = {i: (c, m, v) for i, c, m, v in zip(full.ids, full.contents, full.metadatas, full.vectors)}
    ids, vectors, total, source_ids, source_rows = load_points(store, "pypi", max_points=100)
    assert total == 300 and len(ids) == len(vectors) == 100
    assert ids == sorted(ids) and [source_ids[r] for r in source_rows.tolist()] == ids
    expected = sorted(full.ids[r] for r in stratified_rows(full.ids, strata_codes(full.vectors), 100).tolist())
    assert ids == expected  # the same stratified sample as before
    for i, v in zip(ids, vectors):
        assert np.array_equal(v, by_id[i][2])
    state = MapState(store, "pypi", max_points=100, cache_dir=False)
    assert state.ids == ids and state.contents == [by_id[i][0] for i in ids]  # read when asked for
    assert state.field_values("name") == [by_id[i][1].get("name") for i in ids]
    assert [n.metadata for n in state.nodes([0, 99])] == [by_id[ids[0]][1], by_id[ids[99]][1]]


def test_up_to_max_points_every_point_in_id_order(store):
    ids, vectors, total, _, _ = load_points(store, "pypi", max_points=300)
    assert total == len(ids) == 300 and ids == sorted(ids) and vectors.shape[0] == 300
    again = load_points(store, "pypi")
    assert again[0] == ids and np.array_equal(again[1], vectors)


def test_details_follow_the_store_after_a_change(store):
    state = MapState(store, "pypi", cache_dir=False)
    first = state.ids[0]
    store.delete([first], "pypi")  # deleted after the map was read: its details are missing, the rest aligned
    values = state.field_values("name")
    columns = store.read_columns("pypi")
    stored = dict(zip(columns.ids, columns.metadatas))
    assert values[0] is None and values[1:] == [stored[i].get("name") for i in state.ids[1:]]


def test_the_read_started_in_a_thread_gives_the_same_points_and_the_stores_error(store):
    import pytest

    from vecbook.errors import WorkspaceNotFoundError
    from vecbook.widgets.map_sample import PointsRead

    early = PointsRead(store, "pypi")  # what the explorer starts before importing the widget libraries
    a, b = load_points(store, "pypi", read=early), load_points(store, "pypi")
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    with pytest.raises(WorkspaceNotFoundError):
        MapState(store, "no_such_workspace", cache_dir=False)


class Recording:
    """The store, recording how many vectors each ``read_columns`` call returned."""

    def __init__(self, store, after_ids=None):
        self.store, self.after_ids, self.vectors_read = store, after_ids, []

    def count(self, *args, **kwargs):
        return self.store.count(*args, **kwargs)

    def read_columns(self, *args, **kwargs):
        got = self.store.read_columns(*args, **kwargs)
        if got.vectors is not None:
            self.vectors_read.append(len(got.vectors))
        elif self.after_ids is not None:
            self.after_ids()  # another writer, right after the ids were read
        return got


def test_above_max_points_the_vectors_are_read_a_chunk_at_a_time(store, monkeypatch):
    """A workspace far above the cap never sits in RAM whole: each read holds at most a chunk's
    vectors (or the sample's), and the sample is the one every vector at once would give."""
    monkeypatch.setattr(map_sample, "_CHUNK", 64)
    full = store.read_columns("pypi")
    recording = Recording(store)
    ids, vectors, total, _, _ = load_points(recording, "pypi", max_points=100)
    assert total == 300 and max(recording.vectors_read) <= 100 and sum(recording.vectors_read) == 300 + 100
    assert ids == sorted(full.ids[r] for r in stratified_rows(full.ids, strata_codes(full.vectors), 100).tolist())
    by_id = dict(zip(full.ids, full.vectors))
    assert all(np.array_equal(v, by_id[i]) for i, v in zip(ids, vectors))


def test_a_node_deleted_while_the_sample_is_read_is_left_out(store, monkeypatch):
    monkeypatch.setattr(map_sample, "_CHUNK", 64)
    gone = store.read_columns("pypi", columns=["ids"]).ids[:50]
    recording = Recording(store, after_ids=lambda: store.delete(gone, "pypi"))
    ids, vectors, total, source_ids, source_rows = load_points(recording, "pypi", max_points=100)
    assert len(ids) == len(vectors) == 100 and not set(gone) & set(ids)
    assert [source_ids[r] for r in source_rows.tolist()] == ids
