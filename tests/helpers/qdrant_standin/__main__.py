"""Run the stand-in on its own: ``python -m tests.helpers.qdrant_standin --port 6333`` (prints its URL).

With it, the ``qdrant-live`` conformance variant can be tried without a server:
``VECBOOK_QDRANT_URL=<printed URL> python -m pytest tests/conformance -k qdrant-live``.
"""

from __future__ import annotations

import argparse

from ..loopback import serve_until_stopped
from .server import QdrantStandin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--lag", type=float, default=0.0, help="seconds before a wait=false update applies")
    args = parser.parse_args()
    standin = QdrantStandin(args.host, args.port, api_key=args.api_key, lag=args.lag)
    standin.record = False
    serve_until_stopped(standin)


if __name__ == "__main__":
    main()
