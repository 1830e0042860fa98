"""Binder's set-up installs into a fresh venv and the demo notebooks run there.

repo2docker cannot run here (no Docker engine), so this does what it would do with
``binder/``: a fresh venv, ``pip install -r binder/requirements.txt``, ``binder/postBuild``
from the repository root, then every notebook in ``notebooks/`` executed with nbconvert.
Set VECBOOK_SKIP_BINDER=1 to skip it (it takes a few minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(os.environ.get("VECBOOK_SKIP_BINDER") == "1", reason="VECBOOK_SKIP_BINDER=1"),
    pytest.mark.timeout(1200),
]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_binder_environment_runs_the_demo_notebooks(tmp_path):
    env_dir = tmp_path / "binder-venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), "VIRTUAL_ENV": str(env_dir)}
    env.pop("PYTHONPATH", None)
    run([bin_dir / "python", "-m", "pip", "install", "-q", "-r", ROOT / "binder" / "requirements.txt"], env=env, cwd=ROOT)
    run(["bash", ROOT / "binder" / "postBuild"], env=env, cwd=ROOT)
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
    assert json.loads(settings.read_text())["defaultViewers"]["markdown"] == "Jupytext Notebook"
    work = tmp_path / "notebooks"
    work.mkdir()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no demo notebooks"
    for notebook in notebooks:
        run([bin_dir / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=600", "--output-dir", work, notebook], env=env, cwd=work)
        executed = json.loads((work / notebook.name).read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{notebook.name}: {errors[:1]}"
    # the MyST docs open as notebooks there too
    run([bin_dir / "jupytext", "--to", "ipynb", "--output", work / "quickstart-doc.ipynb", ROOT / "docs" / "quickstart.md"], env=env, cwd=work)
