"""Where a table's matrix lives: the local writer's in an unlinked scratch file (page cache), memory's in RAM."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vecbook import LocalVectorStore, MemoryVectorStore, VectorNode
from vecbook.stores.engine.matrix import FileMatrix, RamMatrix

DIMS = 384


def rss_anon() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


def unlinked_files_open_in(folder: Path) -> int:
    """Blocks (bytes) of files under ``folder`` this process holds open that have no name."""
    inodes = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            link, st = os.readlink(f"/proc/self/fd/{fd}"), os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith(str(folder.resolve())) and st.st_nlink == 0:
            inodes[st.st_ino] = st.st_blocks * 512
    return sum(inodes.values())


def nodes(start: int, n: int, rng) -> list[VectorNode]:
    vectors = rng.standard_normal((n, DIMS), dtype=np.float32)
    return [VectorNode(unique_id=f"n{start + i}", vector=v) for i, v in enumerate(vectors)]


def test_a_local_writer_holds_its_vectors_in_page_cache_not_anonymous_ram(tmp_path):
    rng = np.random.default_rng(0)
    store = LocalVectorStore(store_dir=tmp_path)
    store.create_workspace("ws")
    batches = [nodes(start, 20_000, rng) for start in range(0, 200_000, 20_000)]  # 307 MB of float32 in all
    before = rss_anon()
    for batch in batches:
        store.insert(batch, "ws")
    matrix_bytes = 200_000 * DIMS * 4
    assert rss_anon() - before < matrix_bytes * 3 / 4  # row lists and freed insert buffers malloc keeps; not the matrix
    assert unlinked_files_open_in(tmp_path / "ws") >= matrix_bytes  # the matrix, in a file without a name
    query = batches[7][123].vector
    assert store.search_by_vector(query, "ws", top_k=1)[0].unique_id == "n140123"
    store.close()
    assert not [p.name for p in (tmp_path / "ws").iterdir() if p.name.startswith(".")]  # no scratch, named or hidden


def test_a_file_matrix_grows_without_copying_and_older_views_stay_valid(tmp_path):
    storage = FileMatrix(tmp_path)
    first = storage.empty(1024, 8)
    first[:] = np.arange(1024 * 8, dtype=np.float32).reshape(1024, 8)
    grown = storage.grown(first, 1024, 5000)
    assert grown.shape == (5000, 8) and np.array_equal(grown[:1024], first)
    grown[3] = -1  # one file under both maps: a change through one shows through the other
    assert (first[3] == -1).all()
    assert list(tmp_path.iterdir()) == []  # the scratch has no name
    taken = storage.taken(grown, np.array([3, 10, 1023]))
    assert np.array_equal(taken, grown[[3, 10, 1023]])


def test_the_memory_backend_keeps_its_matrix_in_ram():
    store = MemoryVectorStore()
    store.create_workspace("ws")
    store.insert(nodes(0, 2000, np.random.default_rng(1)), "ws")
    table = store._tables["ws"].table
    assert isinstance(table.storage, RamMatrix) and isinstance(table.vectors.base, np.ndarray)
