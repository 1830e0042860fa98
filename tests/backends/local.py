"""The local backend in the conformance suite: exact, and with its persisted HNSW index (the ann extra),
float32 or int8 (a quantized graph re-ranked exactly; cosine only: ``ONLY``)."""

import vecbook
from tests.backends import HNSW


def _make(tmp_path, request, **kwargs):
    return vecbook.LocalVectorStore(store_dir=str(tmp_path / "local"), **kwargs)


def _make_hnsw(tmp_path, request, **kwargs):
    return vecbook.LocalVectorStore(store_dir=str(tmp_path / "local"), **HNSW, **kwargs)


def _make_int8(tmp_path, request, **kwargs):
    params = {**HNSW["index_params"], "quantization": "int8", "rerank": 50}  # every candidate re-ranked: exact answers
    return vecbook.LocalVectorStore(store_dir=str(tmp_path / "local"), index="hnsw", index_params=params, **kwargs)


VARIANTS = {"local": _make, "local-hnsw": _make_hnsw, "local-int8": _make_int8}
# A quantized index is cosine only (other distances are a ValidationError: tests/unit/test_ann.py).
ONLY = {"local-int8": {"distance": ("cosine",)}}
