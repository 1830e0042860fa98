"""Run the stand-in on its own: ``python -m tests.helpers.es_standin --port 9200`` (prints its URL)."""

from __future__ import annotations

import argparse
import signal
import threading

from .server import EsStandin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EsStandin(args.host, args.port, record_bodies=False) as standin:
        print(standin.url, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
