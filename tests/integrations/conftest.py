"""Fixtures of the integration tests: vecbook stores of the embedded backends."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from vecbook import MissingDependencyError

from tests.backends import make_store

# The embedded backends (no server): LangChain's standard suite runs on each of them.
EMBEDDED = ["memory", "local", "chroma", "qdrant"]


@pytest.fixture(params=EMBEDDED)
def backend_store(request, tmp_path):
    """An empty vecbook store of each embedded backend (no embedding model); closed afterwards."""
    store = make_store(request.param, tmp_path, request)
    yield store
    store.close()


def assert_import_names_the_extra(monkeypatch, package: str, module: str, extra: str) -> None:
    """Importing ``module`` with ``package`` (and its submodules) absent raises MissingDependencyError naming ``extra``."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(MissingDependencyError) as info:
        importlib.import_module(module)
    assert info.value.extra == extra
    assert f"vecbook[{extra}]" in str(info.value)
    assert isinstance(info.value, ImportError)


def imported_with_vecbook(package: str) -> bool:
    """Whether ``import vecbook, vecbook.integrations`` in a new process imports ``package``."""
    code = f"import sys, vecbook, vecbook.integrations; print(any(m.startswith({package!r}) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def refuse_sync(monkeypatch, obj, *names: str) -> None:
    """Make ``obj``'s methods ``names`` fail the test if called: an async method must not fall back to them."""
    for name in names:

        def refuse(*args, name=name, **kwargs):
            raise AssertionError(f"the sync {name} was called from an async method")

        monkeypatch.setattr(obj, name, refuse)
