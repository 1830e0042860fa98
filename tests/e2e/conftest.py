"""A real JupyterLab on a free loopback port, started as the demo starts it, on a temp run folder.

The run folder is prepared by ``vecbook.widgets.lab.prepare_lab_run`` (what
``python -m vecbook tour`` and so ``scripts/demo.sh`` do): a freshly generated
tour notebook, trusted, with the demo's settings overrides. The tracked
``notebooks/explorer_tour.ipynb`` is never read, so whatever a user's Lab saved
into it cannot change this test.

Skips (with the reason) when /usr/bin/chromium, jupyterlab or playwright is
missing; ``scripts/e2e_setup.sh`` installs chromium, the ``notebook`` and
``dev`` extras the Python packages. Never downloads a browser.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from vecbook.widgets.lab import LabRun, prepare_lab_run

ROOT = Path(__file__).resolve().parents[2]
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
                            ("jscatter", "jupyter-scatter"), ("anywidget", "anywidget")):
        if importlib.util.find_spec(module) is None:
            return f"the {package!r} Python package is not installed (pip install 'vecbook[notebook,dev]')"
    return None


@dataclass
class Lab:
    url: str
    token: str
    run: LabRun
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
    run = prepare_lab_run(tmp_path_factory.mktemp("run"))  # a fresh tour, as the demo opens it
    home = tmp_path_factory.mktemp("lab_home")  # an empty home: no user settings answer the news prompt for us
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
    cmd = [*run.command(port=port, allow_root=True, quiet=False), "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=run.root, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, run, log)
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
