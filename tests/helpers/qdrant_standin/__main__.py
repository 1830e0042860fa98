"""Run the stand-in on its own: ``python -m tests.helpers.qdrant_standin --port 6333`` (prints its URL).

With it, the ``qdrant-live`` conformance variant can be tried without a server:
``VECBOOK_QDRANT_URL=<printed URL> python -m pytest tests/conformance -k qdrant-live``.
"""

from __future__ import annotations

import argparse
import signal
import threading

from .server import QdrantStandin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--lag", type=float, default=0.0, help="seconds before a wait=false update applies")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with QdrantStandin(args.host, args.port, api_key=args.api_key, lag=args.lag) as standin:
        standin.record = False
        print(standin.url, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
