"""A Qdrant stand-in for tests: a real HTTP server on loopback speaking Qdrant's REST API.

The official client (``QdrantClient``/``AsyncQdrantClient`` with ``url=``, REST
transport) talks to it as to a Qdrant server. Request bodies are parsed with
qdrant_client's own REST models (an unknown field or a wrong type is a 400, like
the server's ``Format error in JSON body``), responses use Qdrant's envelope
(``{"result", "status": "ok", "time"}``) and its error statuses and messages
(404 missing collection, 409 existing collection, 400 bad input, 422 invalid
values, 403 without the API key). Each request is executed by qdrant_client's
local-mode engine (``QdrantLocal``), so filters, scoring and facets are
Qdrant's reference implementation in Python; the stand-in adds what local mode
lacks: payload indexes (``payload_schema``; facets need one, as on the server),
``wait=false`` updates that land late (``lag``), the request-size limit, and strict
mode's refusal of filters on unindexed keys (``strict``).
See docs/reliability.md for what it does and does not verify::

    with QdrantStandin(api_key="secret") as qdrant:
        client = QdrantClient(url=qdrant.url, api_key="secret")
"""

from .errors import QdrantError
from .server import QdrantStandin, RecordedCall

__all__ = ["QdrantStandin", "QdrantError", "RecordedCall"]
