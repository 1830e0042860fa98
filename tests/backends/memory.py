"""The memory backend in the conformance suite."""

import vecbook


def _make(tmp_path, request, **kwargs):
    return vecbook.MemoryVectorStore(store_dir=str(tmp_path / "memory"), **kwargs)


VARIANTS = {"memory": _make}
