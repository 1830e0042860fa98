"""The qdrant backend in the conformance suite: local mode on disk (``path=``) and in memory.

Local mode commits one sqlite transaction per point, ~10 ms each on this disk, so the
on-disk variant lives in /dev/shm where there is one (the same code path, without the
fsync wait); tests/unit/test_qdrant_backend.py reopens a store on the real disk.
"""

import shutil
import tempfile
from pathlib import Path

import pytest

import vecbook

from tests.backends import closing_store


def _on_disk(tmp_path, request, **kwargs):
    shm = Path("/dev/shm")
    if shm.is_dir():
        folder = tempfile.mkdtemp(prefix="vecbook-qdrant-", dir=shm)
        request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    else:
        folder = str(tmp_path / "qdrant")
    return vecbook.QdrantVectorStore(path=folder, **kwargs)


def _in_memory(tmp_path, request, **kwargs):
    return vecbook.QdrantVectorStore(location=":memory:", **kwargs)


VARIANTS = {"qdrant": _on_disk, "qdrant-memory": _in_memory}


@pytest.fixture
def qdrant_store(tmp_path, request):
    """A store of the in-memory variant, as the conformance suite makes it; closed afterwards."""
    yield from closing_store(_in_memory, tmp_path, request, "qdrant_client")
