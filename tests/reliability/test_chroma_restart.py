"""The Chroma server killed mid-run: a clear BackendUnavailableError, then the same store works again after a restart."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

import vecbook
from tests.backends.chroma import free_port, start_chroma_server, stop_chroma_server
from vecbook import BackendUnavailableError, VectorNode

pytest.importorskip("chromadb")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_server_killed_then_restarted(tmp_path, mode):
    port = free_port()
    server = start_chroma_server(tmp_path, port)
    try:
        store = vecbook.ChromaVectorStore(host="127.0.0.1", port=port, store_dir=str(tmp_path / "unused"))
        store.create_workspace("ws")
        store.insert([VectorNode(unique_id=f"n{i}", content=f"c{i}", vector=np.full(8, i + 1.0)) for i in range(10)], "ws")

        os.kill(server.pid, signal.SIGKILL)  # the server dies mid-run
        server.wait()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as info:
            if mode == "sync":
                store.search_by_vector(np.ones(8), "ws", top_k=3)
            else:
                await store.async_search_by_vector(np.ones(8), "ws", top_k=3)
        assert time.monotonic() - started < 15
        assert f"127.0.0.1:{port}" in str(info.value) or (str(port) in str(info.value) and "127.0.0.1" in str(info.value))

        server = start_chroma_server(tmp_path, port)  # same data directory, same port
        if mode == "sync":
            hits = store.search_by_vector(np.ones(8), "ws", top_k=3)
            store.insert(VectorNode(unique_id="after", content="x", vector=np.ones(8)), "ws")
            count = store.count("ws")
        else:
            hits = await store.async_search_by_vector(np.ones(8), "ws", top_k=3)
            await store.async_insert(VectorNode(unique_id="after", content="x", vector=np.ones(8)), "ws")
            count = await store.async_count("ws")
        assert len(hits) == 3 and count == 11  # nothing acknowledged was lost, no reopen needed
        if mode == "async":
            await store.async_close()
        else:
            store.close()
    finally:
        stop_chroma_server(server)
