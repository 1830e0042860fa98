"""A real JupyterLab on a free loopback port, serving a temp copy of the demo notebook.

Skips (with the reason) when /usr/bin/chromium, jupyterlab or playwright is
missing; ``scripts/e2e_setup.sh`` installs chromium, the ``notebook`` and
``dev`` extras the Python packages. Never downloads a browser.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "explorer_tour.ipynb"
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end tests in JupyterLab with Debian's chromium (scripts/e2e_setup.sh)")


def missing_requirement() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (run scripts/e2e_setup.sh: apt-get install -y chromium)"
    for module, package in (("jupyterlab", "jupyterlab"), ("playwright", "playwright"), ("ipywidgets", "ipywidgets"),
                            ("plotly", "plotly"), ("anywidget", "anywidget")):
        if importlib.util.find_spec(module) is None:
            return f"the {package!r} Python package is not installed (pip install 'vecbook[notebook,dev]')"
    return None


@dataclass
class Lab:
    url: str
    token: str
    root_dir: Path
    log: Path

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*.png"):  # the screenshots are this run's
        stale.unlink()
    root_dir = tmp_path_factory.mktemp("lab_root")
    home = tmp_path_factory.mktemp("lab_home")
    shutil.copy(NOTEBOOK, root_dir / NOTEBOOK.name)
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "get Jupyter news?" toast over the widgets.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "VECBOOK_TOUR_EMBEDDING": "hash",
        "VECBOOK_TOUR_STORE": str(home / "store"),
        "VECBOOK_CACHE_DIR": str(home / "cache"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    })
    port, token = _free_port(), secrets.token_hex(16)
    log = ARTIFACTS / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root_dir}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=root_dir, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root_dir, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 90 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield server
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this fixture started
            proc.wait(timeout=10)
