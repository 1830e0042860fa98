"""The chroma backend in the conformance suite: embedded, and a real `chroma run` server.

The server is started once per test session on a free loopback port; each test's
stores get their own collection prefix, and that test's collections are deleted
at its end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

import vecbook

from tests.backends import closing_store, free_port


def _make(tmp_path, request, **kwargs):
    return vecbook.ChromaVectorStore(store_dir=str(tmp_path / "chroma"), **kwargs)


def _make_server(tmp_path, request, **kwargs):
    host, port = request.getfixturevalue("chroma_server")
    prefix = request.getfixturevalue("chroma_test_prefix")
    return vecbook.ChromaVectorStore(host=host, port=port, collection_prefix=prefix, store_dir=str(tmp_path / "chroma"), **kwargs)


VARIANTS = {"chroma": _make, "chroma-server": _make_server}


@pytest.fixture
def chroma_store(tmp_path, request):
    """A store of the embedded variant, as the conformance suite makes it; closed afterwards."""
    yield from closing_store(_make, tmp_path, request, "chromadb")


def start_chroma_server(data_dir: Path, port: int) -> subprocess.Popen:
    """`chroma run` on 127.0.0.1:port, returned once it answers its heartbeat."""
    exe = shutil.which("chroma", path=os.path.dirname(sys.executable)) or shutil.which("chroma")
    if exe is None:
        pytest.skip("the chroma command (from the chromadb package) is not installed")
    log = open(data_dir / "server.log", "wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    args = [exe, "run", "--path", str(data_dir / "db"), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}: {(data_dir / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    stop_chroma_server(proc)
    raise RuntimeError("chroma run did not answer its heartbeat within 60 s")


def stop_chroma_server(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """(host, port) of a Chroma server running for the whole session."""
    pytest.importorskip("chromadb")
    port = free_port()
    proc = start_chroma_server(tmp_path_factory.mktemp("chroma-server"), port)
    yield "127.0.0.1", port
    stop_chroma_server(proc)


@pytest.fixture(scope="session")
def chroma_admin(chroma_server):
    import chromadb

    return chromadb.HttpClient(host=chroma_server[0], port=chroma_server[1])


@pytest.fixture
def chroma_test_prefix(chroma_admin):
    """A collection prefix of this test's own; its collections are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    yield prefix
    from vecbook.stores.chroma.filters import EVERYTHING

    for collection in chroma_admin.list_collections():
        if collection.name.startswith(prefix):
            collection.delete(where=EVERYTHING)  # as ChromaVectorStore does: see chroma-core/chroma#7594
            chroma_admin.delete_collection(collection.name)
