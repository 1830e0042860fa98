"""Fixtures of the widget state tests: small workspaces on the memory and local backends.

No browser and no frontend: ipywidgets objects work without one, so tests set
widget values and press buttons as a user would and check the state and HTML.
"""

from __future__ import annotations

import pytest

import vecbook
from vecbook import BackendUnavailableError, HashEmbeddingModel, VectorNode
from vecbook.datasets import build_sample_workspace

pytest.importorskip("ipywidgets", reason="the widget tests need the notebook extra")
pytest.importorskip("jscatter", reason="the widget tests need the notebook extra")
pytest.importorskip("pandas", reason="the widget tests need the notebook extra")

DIMS = 32


def mixed_nodes() -> list[VectorNode]:
    """20 nodes with every kind of metadata the filter builder handles."""
    topics = ["ai", "food", "travel", "music"]
    nodes = []
    for i in range(20):
        metadata = {
            "topic": topics[i % 4],
            "year": 2000 + i,
            "score_f": round(0.05 * i, 2),
            "published": f"2026-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}",
            "draft": i % 3 == 0,
            "tags": ["x", "y"] if i % 2 else ["z"],
            "author": {"name": f"author{i % 5}", "age": 30 + i},
        }
        if i % 7 == 0:
            del metadata["published"]
        nodes.append(VectorNode(unique_id=f"n{i:02d}", content=f"note {i} about {topics[i % 4]} things", metadata=metadata))
    return nodes


class FlakyStore(vecbook.MemoryVectorStore):
    """A memory store whose searches fail while ``down`` is set (a backend outage)."""

    down = False

    async def _search(self, *args, **kwargs):
        if self.down:
            raise BackendUnavailableError("search server at 127.0.0.1:1 does not answer")
        return await super()._search(*args, **kwargs)


class CountingStore(vecbook.MemoryVectorStore):
    """A memory store that counts the nodes it hands out (iterated or read as columns)."""

    yielded = 0

    async def async_iter_workspace_nodes(self, *args, **kwargs):
        async for node in super().async_iter_workspace_nodes(*args, **kwargs):
            type(self).yielded += 1
            yield node

    async def async_read_columns(self, *args, **kwargs):
        columns = await super().async_read_columns(*args, **kwargs)
        type(self).yielded += len(columns)
        return columns


def _fill(store) -> None:
    store.create_workspace("notes")
    store.insert(mixed_nodes(), "notes")
    build_sample_workspace(store, "pypi", limit=300)


@pytest.fixture(params=["memory", "local"])
def store(request, tmp_path):
    """A store with workspaces "notes" (20 mixed nodes) and "pypi" (300 sample nodes)."""
    model = HashEmbeddingModel(dimensions=DIMS)
    if request.param == "memory":
        s = vecbook.MemoryVectorStore(embedding_model=model)
    else:
        s = vecbook.LocalVectorStore(embedding_model=model, store_dir=str(tmp_path / "local"))
    _fill(s)
    yield s
    s.close()


@pytest.fixture
def memory_store():
    s = vecbook.MemoryVectorStore(embedding_model=HashEmbeddingModel(dimensions=DIMS))
    _fill(s)
    return s


@pytest.fixture
def flaky_store():
    s = FlakyStore(embedding_model=HashEmbeddingModel(dimensions=DIMS))
    _fill(s)
    return s


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Projections cache under tmp_path, and an empty in-memory cache per test."""
    from vecbook.widgets.projection import ProjectionCache

    monkeypatch.setenv("VECBOOK_CACHE_DIR", str(tmp_path / "cache"))
    ProjectionCache.clear_memory()
    yield
    ProjectionCache.clear_memory()


_FAKE_UMAP = '''"""A stand-in for umap-learn with its hooks (the epochs loop iterates ``umap.layouts.tqdm``), run in the layout process."""
import json, os, time
import numpy as np
from . import layouts

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UMAP:
    def __init__(self, n_components=2, init="spectral", **kwargs):
        self.n_components, self.init = n_components, init

    def fit_transform(self, x):
        init = None if isinstance(self.init, str) else np.asarray(self.init)
        with open(os.path.join(_HERE, "calls.jsonl"), "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "init": None if init is None else
                                [list(init.shape), float(init.min()), float(init.max())]}) + "\\n")
        while os.path.exists(os.path.join(_HERE, "hold")):
            time.sleep(0.02)
        if os.path.exists(os.path.join(_HERE, "fail")):
            raise RuntimeError(open(os.path.join(_HERE, "fail")).read())
        for _ in layouts.tqdm(range(20)):
            time.sleep(0.001)
        return np.asarray(x, dtype=np.float32)[:, : self.n_components] * 10
'''


class FakeUmap:
    """Controls the stand-in umap package: ``hold()``/``release()`` the fit, ``fail(message)``, ``calls()``."""

    def __init__(self, root):
        self.root = root

    def hold(self):
        (self.root / "hold").touch()

    def release(self):
        (self.root / "hold").unlink(missing_ok=True)

    def fail(self, message: str):
        (self.root / "fail").write_text(message)

    def calls(self) -> list[dict]:
        import json

        path = self.root / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def fake_umap(tmp_path, monkeypatch):
    """A stand-in umap-learn package first on sys.path, so the layout process (spawned: it gets this sys.path) imports it."""
    root = tmp_path / "fake_umap"
    (root / "umap").mkdir(parents=True)
    (root / "umap" / "__init__.py").write_text(_FAKE_UMAP)
    (root / "umap" / "layouts.py").write_text("def tqdm(iterable, **kwargs):\n    return iterable\n")
    monkeypatch.syspath_prepend(str(root))
    fake = FakeUmap(root)
    yield fake
    fake.release()
