"""The qdrant backend in the conformance suite: local mode, and server mode over REST.

``qdrant`` (local mode on disk) and ``qdrant-memory`` (``location=":memory:"``).
Local mode commits one sqlite transaction per point, ~10 ms each on this disk, so the
on-disk variant lives in /dev/shm where there is one (the same code path, without the
fsync wait); tests/unit/test_qdrant_backend.py reopens a store on the real disk.

``qdrant-server``: ``url=`` to the stand-in (tests/helpers/qdrant_standin), a real
HTTP server on loopback speaking Qdrant's REST API, which the official
``AsyncQdrantClient`` talks to; one per session, emptied after each test.
``qdrant-strict``: the same in strict mode, as Qdrant Cloud runs collections: a filter on a
key without a fitting payload index is refused.
``qdrant-live``: ``url=$VECBOOK_QDRANT_URL`` (skipped when it is unset), e.g.
``VECBOOK_QDRANT_URL=http://localhost:6333``, with ``VECBOOK_QDRANT_API_KEY`` if the
server wants one. Each test uses a collection prefix of its own (``vbt<hex>_``), so the
server may hold other collections; the ones a test creates are deleted when it ends.
"""

import os
import shutil
import tempfile
import uuid
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


def _standin(**options):
    pytest.importorskip("qdrant_client")
    from tests.helpers.qdrant_standin import QdrantStandin

    with QdrantStandin(lag=0.5, **options) as server:  # wait=false updates land 0.5 s later, as on a busy server
        yield server


@pytest.fixture(scope="session")
def qdrant_standin():
    yield from _standin()


@pytest.fixture(scope="session")
def qdrant_standin_strict():
    yield from _standin(strict=True)


def _once_per_test(request, key: str, setup) -> None:
    node = request.node
    if not getattr(node, key, False):
        setattr(node, key, True)
        setup(node)


def _make_standin(tmp_path, request, fixture: str = "qdrant_standin", **kwargs):
    server = request.getfixturevalue(fixture)

    def cleanup() -> None:
        server.reset()
        errors, server.internal_errors[:] = list(server.internal_errors), []
        assert not errors, f"the Qdrant stand-in failed internally: {errors!r}"

    _once_per_test(request, "_vecbook_qdrant_standin", lambda node: node.addfinalizer(cleanup))
    return vecbook.QdrantVectorStore(url=server.url, api_key=server.api_key, **kwargs)


def _make_live(tmp_path, request, **kwargs):
    url = os.environ.get("VECBOOK_QDRANT_URL")
    if not url:
        pytest.skip("set VECBOOK_QDRANT_URL to run the suite against a live Qdrant")
    api_key = os.environ.get("VECBOOK_QDRANT_API_KEY") or None
    node = request.node
    prefix = getattr(node, "_vecbook_qdrant_prefix", None)
    if prefix is None:
        prefix = node._vecbook_qdrant_prefix = f"vbt{uuid.uuid4().hex[:12]}_"

        def cleanup() -> None:
            from qdrant_client import QdrantClient

            from vecbook.stores.qdrant.points import workspace_of

            client = QdrantClient(url=url, api_key=api_key, check_compatibility=False)
            try:
                for c in client.get_collections().collections:
                    if workspace_of(prefix, c.name) is not None:
                        client.delete_collection(c.name)
            finally:
                client.close()

        node.addfinalizer(cleanup)
    return vecbook.QdrantVectorStore(url=url, api_key=api_key, collection_prefix=prefix, **kwargs)


def _make_strict(tmp_path, request, **kwargs):
    return _make_standin(tmp_path, request, fixture="qdrant_standin_strict", **kwargs)


VARIANTS = {
    "qdrant": _on_disk,
    "qdrant-memory": _in_memory,
    "qdrant-server": _make_standin,
    "qdrant-strict": _make_strict,
    "qdrant-live": _make_live,
}


@pytest.fixture
def qdrant_store(tmp_path, request):
    """A store of the in-memory variant, as the conformance suite makes it; closed afterwards."""
    yield from closing_store(_in_memory, tmp_path, request, "qdrant_client")
