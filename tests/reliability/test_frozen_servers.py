"""A server that stops answering (SIGSTOP, a hung host) raises BackendUnavailableError after a
configurable timeout, never blocks a call forever; the store works again once the server does."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from tests.backends import silent_port
from tests.backends.chroma import free_port, start_chroma_server, stop_chroma_server
from vecbook import BackendUnavailableError, VectorNode


def test_a_frozen_chroma_server_times_out_then_recovers(tmp_path):
    chromadb = pytest.importorskip("chromadb")  # noqa: F841
    from vecbook import ChromaVectorStore

    port = free_port()
    proc = start_chroma_server(tmp_path, port)
    try:
        store = ChromaVectorStore(host="127.0.0.1", port=port, request_timeout=2)
        store.create_workspace("w", dimensions=4)
        store.insert(VectorNode(unique_id="a", vector=np.ones(4)), "w")
        proc.send_signal(signal.SIGSTOP)
        try:
            started = time.perf_counter()
            with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}"):
                store.count("w")
            assert time.perf_counter() - started < 10
        finally:
            proc.send_signal(signal.SIGCONT)
        assert store.count("w") == 1
        store.close()
    finally:
        stop_chroma_server(proc)


def test_an_elasticsearch_server_that_never_answers_times_out():
    pytest.importorskip("elasticsearch")
    from vecbook import EsVectorStore

    with silent_port() as port:
        store = EsVectorStore(hosts=f"http://127.0.0.1:{port}", request_timeout=1, connect_timeout=1)
        started = time.perf_counter()
        with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}"):
            store.exist_workspace("w")
        assert time.perf_counter() - started < 8
        store.close()
