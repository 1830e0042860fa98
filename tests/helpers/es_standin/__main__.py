"""Run the stand-in on its own: ``python -m tests.helpers.es_standin --port 9200`` (prints its URL)."""

from __future__ import annotations

import argparse

from ..loopback import serve_until_stopped
from .server import EsStandin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve_until_stopped(EsStandin(args.host, args.port, record_bodies=False))


if __name__ == "__main__":
    main()
