"""vecbook._big_arrays: bulk reads' arrays in a private anonymous map of their own (not numpy's allocator,
whose huge-page advice made the first touch of 1.5 GB wait for memory compaction: docs/explorer.md)."""

from __future__ import annotations

import mmap
import os
import pickle

import numpy as np
import pytest

from tests.helpers.local_files import node
from vecbook import LocalVectorStore, MemoryVectorStore
from vecbook import _big_arrays as big_arrays


def memory_of(a: np.ndarray):
    """What holds the array's bytes (numpy wraps a buffer it is given in a memoryview)."""
    while isinstance(a, (np.ndarray, memoryview)):
        a = a.base if isinstance(a, np.ndarray) else a.obj
    return a


def test_an_empty_array_is_writable_contiguous_and_mapped_for_itself():
    a = big_arrays.empty((1000, 384), np.float32)
    assert a.shape == (1000, 384) and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    assert isinstance(memory_of(a), mmap.mmap)
    a[:] = 2.5
    assert float(a.sum()) == 2.5 * 1000 * 384
    again = pickle.loads(pickle.dumps(a))
    assert np.array_equal(again, a) and again.flags.writeable
    assert big_arrays.empty((0, 384), np.float32).shape == (0, 384)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_writes_its_own_copy():
    a = big_arrays.empty((100, 8), np.float32)
    a[:] = 1.0
    pid = os.fork()
    if pid == 0:  # the child: a shared map would let this reach the parent
        a[:] = 7.0
        os._exit(0 if float(a[0, 0]) == 7.0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert float(a.max()) == 1.0


@pytest.mark.parametrize("make", [lambda tmp: LocalVectorStore(store_dir=tmp), lambda tmp: MemoryVectorStore()], ids=["local", "memory"])
def test_read_columns_hands_out_vectors_the_store_does_not_share(tmp_path, make):
    store = make(tmp_path)
    store.create_workspace("ws")
    store.insert([node(i) for i in range(50)], "ws")
    columns = store.read_columns("ws", columns=["ids", "vectors"])
    assert isinstance(memory_of(columns.vectors), mmap.mmap) and columns.vectors.flags.writeable
    first = columns.vectors[0].copy()
    columns.vectors[:] = 0.0  # the caller's copy: the store is unchanged
    assert np.array_equal(store.read_columns("ws", columns=["vectors"]).vectors[0], first)
    store.close()
