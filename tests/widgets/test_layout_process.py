"""UMAP in a child process: cancelled with the map, a dead child or a missing umap-learn reported typed, no orphans.

Real processes throughout (spawned as the map spawns them); the umap-learn they
import is the stand-in of conftest.py (``fake_umap``) so a test can hold a fit
at a known point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from vecbook.errors import (
    LayoutCancelledError,
    LayoutWorkerError,
    MissingDependencyError,
)
from vecbook.widgets import MapState, explore

pytestmark = pytest.mark.timeout(180)


def _gone(pid: int, within: float = 10.0) -> bool:
    """True once process ``pid`` has ended: gone, or a zombie left to another parent (ours are reaped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state, ppid = f.read().rsplit(") ", 1)[-1].split()[:2]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z" and int(ppid) != os.getpid():  # exited; reaping it is its new parent's (init's) job
            return True
        time.sleep(0.05)
    return False


def _fitting(state, fake_umap, within: float = 120.0) -> int:
    """Wait until the child is inside umap's fit; its pid."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        process = state.job.process if state.job is not None else None
        if process is not None and fake_umap.calls():
            assert fake_umap.calls()[0]["pid"] == process.pid
            return process.pid
        time.sleep(0.05)
    raise AssertionError(f"the layout process never reached the fit: {state.job.message if state.job else None}")


def test_choosing_another_layout_stops_the_umap_process(memory_store, fake_umap):
    fake_umap.hold()
    state = MapState(memory_store, "pypi", cache_dir=False)
    messages = []
    state.on("progress", lambda f, m: messages.append(m))
    state.show("umap")
    pid = _fitting(state, fake_umap)
    assert pid != os.getpid() and state.method == "pca"
    state.show("pca")  # the user goes back to PCA while UMAP computes
    assert _gone(pid) and state.job.done
    assert isinstance(state.job.error, LayoutCancelledError) and messages[-1] == "cancelled"
    assert state.method == "pca" and state.error is None and not state.cached("umap")


def test_closing_the_explorer_stops_the_umap_process(memory_store, fake_umap):
    fake_umap.hold()
    ex = explore(memory_store, "pypi", cache_dir=False)
    ex.map.method_box.value = "umap"
    pid = _fitting(ex.map.state, fake_umap)
    ex.close()
    assert _gone(pid) and isinstance(ex.map.state.job.error, LayoutCancelledError)


def test_a_dead_layout_process_is_a_typed_error(memory_store, fake_umap):
    fake_umap.hold()
    state = MapState(memory_store, "pypi", cache_dir=False)
    state.show("umap")
    pid = _fitting(state, fake_umap)
    os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    assert state.wait_for_umap(30)
    assert isinstance(state.job.error, LayoutWorkerError) and not isinstance(state.job.error, LayoutCancelledError)
    assert "died without a result" in state.error and f"pid {pid}" in state.error and state.method == "pca"
    assert _gone(pid)


def test_missing_umap_learn_in_the_layout_process_names_the_extra(memory_store, fake_umap):
    (fake_umap.root / "umap" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'umap'\", name='umap')\n")
    state = MapState(memory_store, "pypi", cache_dir=False)
    state.show("umap")
    assert state.wait_for_umap(60)
    assert isinstance(state.job.error, MissingDependencyError) and state.job.error.extra == "notebook"
    assert "MissingDependencyError" in state.error and "pip install 'vecbook[notebook]'" in state.error


def test_the_layout_process_leaves_when_its_kernel_is_killed(tmp_path, fake_umap):
    """A kernel killed outright (no cleanup runs) leaves no UMAP process behind."""
    fake_umap.hold()
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {[str(fake_umap.root)] + sys.path!r}
        import numpy as np
        from vecbook.widgets.projection import UmapJob
        if __name__ == "__main__":
            job = UmapJob(np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)).start()
            while job.process is None:
                time.sleep(0.02)
            print(job.process.pid, flush=True)
            time.sleep(600)
        """)
    path = tmp_path / "kernel.py"
    path.write_text(script)
    kernel = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(kernel.stdout.readline())
        deadline = time.monotonic() + 120
        while not fake_umap.calls() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_umap.calls(), "the layout process never started its fit"
        kernel.kill()
        kernel.wait(10)
        assert _gone(child, within=10.0), f"layout process {child} outlived its kernel"
    finally:
        kernel.kill()
        kernel.wait(10)
