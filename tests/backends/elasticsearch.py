"""The elasticsearch backend in the conformance suite.

``elasticsearch``: against the in-process stand-in (tests/helpers/es_standin), a
real HTTP server on loopback that the official client talks to.
``elasticsearch-live``: against the server at ``$VECBOOK_ES_URL`` (skipped when it
is unset), e.g. ``VECBOOK_ES_URL=http://localhost:9200``; credentials may be given
as ``VECBOOK_ES_USER``/``VECBOOK_ES_PASSWORD`` or ``VECBOOK_ES_API_KEY``.

Each test gets its own index prefix (shared by the stores it makes, like a
tmp_path); its indices are deleted when the test ends.
"""

from __future__ import annotations

import os
import uuid

import pytest

import vecbook


@pytest.fixture(scope="session")
def es_standin():
    from tests.helpers.es_standin import EsStandin

    with EsStandin() as server:
        yield server


def live_options() -> dict:
    """Client arguments for $VECBOOK_ES_URL."""
    options: dict = {"hosts": os.environ["VECBOOK_ES_URL"]}
    if os.environ.get("VECBOOK_ES_USER"):
        options["basic_auth"] = (os.environ["VECBOOK_ES_USER"], os.environ.get("VECBOOK_ES_PASSWORD", ""))
    if os.environ.get("VECBOOK_ES_API_KEY"):
        options["api_key"] = os.environ["VECBOOK_ES_API_KEY"]
    if os.environ.get("VECBOOK_ES_CA_CERTS"):
        options["client_options"] = {"ca_certs": os.environ["VECBOOK_ES_CA_CERTS"]}
    return options


def _prefix(request, cleanup) -> str:
    node = request.node
    prefix = getattr(node, "_vecbook_es_prefix", None)
    if prefix is None:
        prefix = node._vecbook_es_prefix = f"vbt-{uuid.uuid4().hex[:12]}-"
        node.addfinalizer(lambda: cleanup(prefix))
    return prefix


def _make_standin(tmp_path, request, **kwargs):
    server = request.getfixturevalue("es_standin")

    def cleanup(prefix: str) -> None:
        with server.lock:
            for name in [n for n in server.cluster.indices if n.startswith(prefix)]:
                server.cluster.delete(name)
        errors, server.internal_errors[:] = list(server.internal_errors), []
        assert not errors, f"the Elasticsearch stand-in failed internally: {errors!r}"

    return vecbook.EsVectorStore(hosts=server.url, index_prefix=_prefix(request, cleanup), **kwargs)


def _make_live(tmp_path, request, **kwargs):
    if not os.environ.get("VECBOOK_ES_URL"):
        pytest.skip("set VECBOOK_ES_URL to run the suite against a live Elasticsearch")
    options = live_options()

    def cleanup(prefix: str) -> None:
        from elasticsearch import Elasticsearch

        client_options = options.get("client_options", {})
        with Elasticsearch(options["hosts"], basic_auth=options.get("basic_auth"), api_key=options.get("api_key"), **client_options) as client:
            for entry in client.indices.resolve_index(name=f"{prefix}*")["indices"]:
                client.indices.delete(index=entry["name"], ignore_unavailable=True)

    return vecbook.EsVectorStore(index_prefix=_prefix(request, cleanup), **options, **kwargs)


VARIANTS = {"elasticsearch": _make_standin, "elasticsearch-live": _make_live}
