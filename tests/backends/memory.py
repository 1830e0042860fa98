"""The memory backend in the conformance suite: exact, and with its HNSW index (the ann extra)."""

import vecbook

from tests.backends import HNSW


def _make(tmp_path, request, **kwargs):
    return vecbook.MemoryVectorStore(store_dir=str(tmp_path / "memory"), **kwargs)


def _make_hnsw(tmp_path, request, **kwargs):
    return vecbook.MemoryVectorStore(store_dir=str(tmp_path / "memory"), **HNSW, **kwargs)


VARIANTS = {"memory": _make, "memory-hnsw": _make_hnsw}
