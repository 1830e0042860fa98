"""One module per backend, each telling the conformance suite how to make its stores.

A module here defines ``VARIANTS``: a dict from a variant name (shown in test
ids, e.g. ``"chroma-server"``) to ``make(tmp_path, request, **kwargs) -> store``,
and may define ``ONLY`` (see :func:`only`).
It may also define pytest fixtures (e.g. a session-scoped server) and use them
through ``request.getfixturevalue``. tests/conftest.py loads every module here
as a pytest plugin, so each backend lives in its own file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
import socket
import time

import pytest

import vecbook

# The "-hnsw" variants of memory and local search through their HNSW index from the first
# node (exact_below=0) with a search breadth far above the suite's workspace sizes, so their
# answers must equal the exact ones.
HNSW = {"index": "hnsw", "index_params": {"exact_below": 0, "ef_search": 4000}}


def modules() -> list[str]:
    return [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def variants() -> dict:
    found = {}
    for name in modules():
        found.update(getattr(importlib.import_module(name), "VARIANTS", {}))
    return found


def only() -> dict:
    """``{variant: {parameter: values}}``: the test parameters a variant has (a module's ``ONLY``).

    The conformance suite leaves the other combinations out (deselected, not skipped: such a
    store does not exist, e.g. a quantized index with ``distance="dot"``, whose refusal is
    tested where it is made)."""
    found = {}
    for name in modules():
        found.update(getattr(importlib.import_module(name), "ONLY", {}))
    return found


def make_store(variant: str, tmp_path, request, **kwargs):
    try:
        return variants()[variant](tmp_path, request, **kwargs)
    except vecbook.MissingDependencyError as exc:
        pytest.skip(str(exc))


def closing_store(make, tmp_path, request, module: str):
    """Body of a fixture: a store from ``make`` (skipped without ``module``), closed afterwards."""
    pytest.importorskip(module)
    store = make(tmp_path, request)
    yield store
    store.close()


def free_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def silent_port():
    """A loopback port whose connections the kernel accepts and nobody ever answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def unreachable(store, mode: str = "sync", within: float = 3.0) -> vecbook.BackendUnavailableError:
    """What a store whose server is down (or silent) raises on a call, sync or async: typed, within ``within`` s."""
    started = time.perf_counter()
    with pytest.raises(vecbook.BackendUnavailableError) as info:
        if mode == "sync":
            store.create_workspace("w")
        else:
            asyncio.run(store.async_list_workspaces())
    assert time.perf_counter() - started < within
    return info.value
