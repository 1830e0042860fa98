"""Run vecbook's test embeddings server in its own process (so its CPU is not the client's).

    python bench/embed_server.py LATENCY DIMENSIONS

Prints the base URL on one line, then serves until its stdin closes.

The handler is given TCP_NODELAY, as real servers (uvicorn, nginx...) set it:
without it, http.server writes the headers and the body in separate packets,
and Nagle's algorithm against the client's delayed ACK adds ~40 ms to every
keep-alive request, which would be charged to the client.
"""

from __future__ import annotations

import sys

from vecbook.testing import EmbeddingServer
from vecbook.testing import embedding_server

embedding_server._Handler.disable_nagle_algorithm = True

with EmbeddingServer(latency=float(sys.argv[1]), native_dimensions=int(sys.argv[2])) as server:
    print(server.base_url, flush=True)
    sys.stdin.read()
