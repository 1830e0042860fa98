"""The local backend in the conformance suite: exact, and with its persisted HNSW index (the ann extra)."""

import vecbook

from tests.backends import HNSW


def _make(tmp_path, request, **kwargs):
    return vecbook.LocalVectorStore(store_dir=str(tmp_path / "local"), **kwargs)


def _make_hnsw(tmp_path, request, **kwargs):
    return vecbook.LocalVectorStore(store_dir=str(tmp_path / "local"), **HNSW, **kwargs)


VARIANTS = {"local": _make, "local-hnsw": _make_hnsw}
