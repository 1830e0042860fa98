"""The local backend in the conformance suite."""

import vecbook


def _make(tmp_path, request, **kwargs):
    return vecbook.LocalVectorStore(store_dir=str(tmp_path / "local"), **kwargs)


VARIANTS = {"local": _make}
