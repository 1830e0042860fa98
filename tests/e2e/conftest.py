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
import os
from pathlib import Path

import pytest

from vecbook.widgets.lab import prepare_lab_run

from .labkit import CHROMIUM, serve_lab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"


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
    tour = {"VECBOOK_TOUR_EMBEDDING": "hash", "VECBOOK_TOUR_STORE": str(home / "store")}
    with serve_lab(run, home, ARTIFACTS / "jupyterlab.log", tour) as server:
        yield server
