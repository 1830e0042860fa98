"""Projections at scale: PCA, UMAP on a sample with the rest placed, progress stages, caching, responsiveness."""

from __future__ import annotations

import importlib.util
import sys
import threading

import numpy as np
import pytest

from vecbook import HashEmbeddingModel, MissingDependencyError
from vecbook.datasets import load_pypi_sample
from vecbook.widgets.layout_umap import NeighbourIndex, place, sample_indices
from vecbook.widgets.projection import ProjectionCache, UmapJob, pca

needs_umap = pytest.mark.skipif(importlib.util.find_spec("umap") is None, reason="umap-learn not installed")


@pytest.fixture(scope="module")
def pypi_vectors() -> np.ndarray:
    """The bundled sample's 3,000 summaries, embedded by the hashing model (words shared -> near)."""
    texts = [node.content for node in load_pypi_sample()]
    return np.asarray(HashEmbeddingModel(dimensions=64).embed_batch(texts), dtype=np.float32)


def clustered(n: int, dims: int = 32, centres: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dims)) * 4
    return (means[rng.integers(0, centres, n)] + rng.normal(size=(n, dims))).astype(np.float32)


def knn_overlap(x: np.ndarray, coords: np.ndarray, k: int = 10) -> float:
    """Mean share of a point's k nearest in vector space (cosine) that are among its k nearest on the map."""
    probes = np.arange(0, len(x), 5)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    near = np.argsort(-(unit[probes] @ unit.T), axis=1)[:, 1 : k + 1]
    mapped = np.argsort(((coords[probes, None, :] - coords[None, :, :]) ** 2).sum(-1), axis=1)[:, 1 : k + 1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(near, mapped)]))


def test_pca_is_deterministic_with_every_row_projected():
    x = clustered(60_000)
    a, b = pca(x), pca(x.copy())
    assert a.shape == (60_000, 2) and a.dtype == np.float32 and np.array_equal(a, b)
    assert abs(a.mean()) < 1e-2 and a[:, 0].var() >= a[:, 1].var() > 0
    assert pca(x, 3).shape == (60_000, 3)
    # Fitted on a 50k subset: the kept variance is within a percent of the exact components'.
    centred = x - x.mean(axis=0)
    exact = np.linalg.svd(centred, full_matrices=False)[1][:2] ** 2
    assert a.var(axis=0).sum() * len(x) >= 0.99 * exact.sum()


def test_sample_indices_are_fixed_sorted_and_all_when_small():
    assert np.array_equal(sample_indices(10, 30), np.arange(10))
    a = sample_indices(100_000, 500)
    assert len(a) == 500 and np.array_equal(a, np.sort(a)) and np.array_equal(a, sample_indices(100_000, 500))
    assert len(np.unique(a)) == 500


@pytest.mark.parametrize("n", [500, 6_000])  # umap-learn itself would switch from exact to NN-descent at 4,096
def test_neighbour_graph_puts_each_point_first_and_finds_true_neighbours(n):
    x = clustered(n)
    labels, dists = NeighbourIndex(x, "cosine").graph(10)
    assert labels.shape == dists.shape == (n, 10) and labels.dtype == np.int32
    assert np.array_equal(labels[:, 0], np.arange(n)) and np.all(dists[:, 0] == 0)
    assert np.all(np.diff(dists, axis=1) >= -1e-6)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    probes = np.arange(0, n, max(1, n // 200))
    exact = np.argsort(-(unit[probes] @ unit.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels[probes], exact)])
    assert recall > 0.8


def test_unknown_metric_is_refused_by_name():
    with pytest.raises(ValueError, match="cosine, euclidean"):
        NeighbourIndex(clustered(50), "hamming")


def test_missing_usearch_names_the_notebook_extra(monkeypatch):
    for name in [n for n in sys.modules if n == "usearch" or n.startswith("usearch.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "usearch", None)
    with pytest.raises(MissingDependencyError, match=r"vecbook\[notebook\]") as info:
        NeighbourIndex(clustered(50), "cosine")
    assert info.value.package == "usearch" and info.value.extra == "notebook"


def test_placement_lands_points_beside_their_neighbours():
    x = clustered(3_000)
    sample = sample_indices(len(x), 1_000)
    layout = pca(x[sample])  # any layout of the sample: placement must follow it
    index = NeighbourIndex(x[sample], "cosine")
    others = np.setdiff1d(np.arange(len(x)), sample)
    chunks = list(place(index, layout, x, others, chunk=700))
    assert [first for first, _ in chunks] == [0, 700, 1400]
    placed = np.concatenate([c for _, c in chunks])
    assert placed.shape == (len(others), 2) and np.isfinite(placed).all()
    # A row equal to a sampled point lands on it (within 0.01 % of the map's span).
    first = next(place(index, layout, x, sample[:5]))[1]
    assert np.allclose(first, layout[:5], atol=1e-4 * np.ptp(layout))
    # Each placed point sits closer to its nearest sampled neighbour's position than to a random sampled one.
    labels, _ = index.query(x[others], 1)
    near = np.linalg.norm(placed - layout[labels[:, 0]], axis=1)
    far = np.linalg.norm(placed - layout[np.random.default_rng(0).integers(0, len(sample), len(others))], axis=1)
    assert np.mean(near < far) > 0.8


@needs_umap
def test_umap_on_a_sample_keeps_neighbours_near_reports_stages_in_order_and_partial_first(pypi_vectors):
    x = pypi_vectors
    events = []
    job = UmapJob(x, init=pca(x), sample_size=1_000, on_progress=lambda f, m: events.append((f, m)),
                  on_partial=lambda rows, coords: events.append(("partial", rows, coords)),
                  on_done=lambda j: events.append("done"))
    assert job.start() is job
    assert job.wait(600) and job.error is None, job.error
    result = job.result
    assert result.shape == (3_000, 2) and result.dtype == np.float32 and np.isfinite(result).all()
    progress = [e for e in events if isinstance(e, tuple) and not isinstance(e[0], str)]
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stages = [m.split(":")[0] for _, m in progress]
    order = ["finding the 15 nearest", "fitting 1,000 sampled points", "placing the other 2,000 points", "done in"]
    positions = [next(i for i, s in enumerate(stages) if s.startswith(o)) for o in order]
    assert positions == sorted(positions), stages
    at = next(i for i, e in enumerate(events) if isinstance(e, tuple) and isinstance(e[0], str))
    placing = next(i for i, e in enumerate(events) if isinstance(e, tuple) and isinstance(e[1], str) and e[1].startswith("placing"))
    assert at < placing  # the sample's layout is shown before the rest is placed
    rows, coords = events[at][1], events[at][2]
    assert len(rows) == 1_000 and np.array_equal(result[rows], coords) and job.partial[0] is rows
    assert events[-1] == "done"
    # Neighbours stay near: measured 0.10 here (UMAP of all 3,000: 0.19, PCA: 0.03, chance: 0.003).
    overlap = knn_overlap(x, result)
    assert overlap > 2 * knn_overlap(x, pca(x)) and overlap > 10 * 10 / len(x)
    # The same data gives the same map.
    again = UmapJob(x, init=pca(x), sample_size=1_000).start()
    assert again.wait(600) and np.array_equal(again.result, result)


@needs_umap
def test_umap_result_cached_by_content(pypi_vectors, tmp_path):
    from vecbook.widgets.projection import fingerprint

    ids = [f"p{i}" for i in range(len(pypi_vectors))]
    cache = ProjectionCache(tmp_path)
    key = cache.key(fingerprint(ids, pypi_vectors), "umap", 2, {"sample_size": 1_000})
    assert cache.get(key) is None
    job = UmapJob(pypi_vectors, init=pca(pypi_vectors), sample_size=1_000).start()
    job.wait(600)
    cache.put(key, job.result)
    ProjectionCache.clear_memory()
    assert np.array_equal(ProjectionCache(tmp_path).get(key), job.result)  # from disk, as in a new kernel
    changed = pypi_vectors.copy()
    changed[0, 0] += 1
    assert cache.key(fingerprint(ids, changed), "umap", 2, {"sample_size": 1_000}) != key


@needs_umap
def test_a_running_job_leaves_the_main_thread_free(pypi_vectors):
    """The main thread keeps counting while the job runs: it is never stuck behind the worker."""
    ticks_during = []
    seen = threading.Event()

    def progress(fraction, message):
        ticks_during.append(ticks[0])
        if message.startswith(("fitting", "placing")):
            seen.set()

    ticks = [0]
    job = UmapJob(pypi_vectors, init=pca(pypi_vectors), sample_size=1_000, on_progress=progress).start()
    while not job.done:
        ticks[0] += 1
        job.wait(0.001)
    assert job.error is None and seen.is_set()
    # The main loop advanced between the worker's progress reports: it ran alongside, not after.
    assert len(set(ticks_during)) > len(ticks_during) // 2
    assert ticks_during[-1] > ticks_during[0]


@needs_umap
def test_umap_code_is_kept_in_numba_disk_cache(pypi_vectors):
    """After a fit, umap's layout code is on disk, so the next layout process loads it instead of compiling."""
    messages: list[str] = []
    for _ in range(2):
        messages.clear()
        job = UmapJob(pypi_vectors[:300], init=pca(pypi_vectors[:300]), on_progress=lambda f, m: messages.append(m)).start()
        assert job.wait(600) and job.error is None, job.error
    assert "loading umap's compiled code from numba's cache" in messages, messages


@needs_umap
def test_the_kernel_never_imports_umap_or_numba(tmp_path):
    """The fit runs in a spawned process: the calling process (the kernel) imports neither umap-learn nor numba."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from vecbook.widgets.projection import UmapJob, pca\n"
            "x = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)\n"
            "job = UmapJob(x, init=pca(x)).start(); job.wait(600)\n"
            "print(job.error, job.result.shape, sorted(m for m in sys.modules if m.split('.')[0] in ('umap', 'numba', 'pynndescent')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert out.stdout.strip() == "None (500, 2) []", out.stdout + out.stderr


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_the_vectors_reach_the_layout_process_file_as_they_are(tmp_path, layout):
    from vecbook.widgets.projection import _COPY_ROWS, _write_npy

    x = np.random.default_rng(0).standard_normal((2 * _COPY_ROWS + 5, 12), dtype=np.float32)
    x = {"C": x, "F": np.asfortranarray(x), "strided": x[:, ::2]}[layout]
    _write_npy(tmp_path / "v.npy", x, threading.Event())
    assert np.array_equal(np.load(tmp_path / "v.npy", mmap_mode="r"), x)
