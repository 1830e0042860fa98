"""A JupyterLab run folder for the explorer tour: what ``bash scripts/demo.sh`` opens.

Everything the session needs lives in the run folder (the demo's store folder,
ignored by git), never in the repository or the user's home:

- a fresh copy of the tour notebook (:mod:`.tour`), so the tracked notebook is
  never opened, autosaved or left with stale widget views;
- that copy signed as trusted, with the signature database kept in the folder;
- settings overrides that turn off JupyterLab's "Jupyter news" prompt and its
  update check (nothing is fetched from the internet);
- Lab's layout state (workspaces), kept apart from the user's own Lab sessions.

Lab serves the folder, and the URL it prints (with its token) opens the tour
notebook itself rather than the Launcher.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .tour import TOUR_NAME, write_tour

__all__ = ["NOTIFICATION_OVERRIDES", "LabRun", "prepare_lab_run"]

# A hidden folder: Lab's file browser does not list it, and no workspace id starts with a dot.
STATE_DIR = ".jupyter"
NOTIFICATION_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


@dataclass(frozen=True)
class LabRun:
    """A prepared run folder: ``root`` is what Lab serves, ``notebook`` the tour copy in it."""

    root: Path
    notebook: Path

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def settings_dir(self) -> Path:
        """Lab's app settings folder for this run (``overrides.json``)."""
        return self.state_dir / "lab-settings"

    @property
    def data_dir(self) -> Path:
        """The notebook signature database (trust) for this run."""
        return self.state_dir / "data"

    @property
    def workspaces_dir(self) -> Path:
        return self.state_dir / "lab-workspaces"

    @property
    def url_path(self) -> str:
        """The path of the URL that opens the tour notebook in Lab."""
        return f"/lab/tree/{self.notebook.relative_to(self.root).as_posix()}"

    def lab_args(self, port: int = 8888, allow_root: bool | None = None, quiet: bool = True) -> list[str]:
        """Arguments of ``jupyter lab`` that serve this folder on 127.0.0.1 with the run's settings.

        Lab picks the next free port when ``port`` is taken and prints the URL it serves, with its
        token; ``quiet`` keeps its log to warnings, so that URL is what stands out.
        """
        if allow_root is None:
            allow_root = hasattr(os, "geteuid") and os.geteuid() == 0
        args = [
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.default_url={self.url_path}",  # the printed URL opens the notebook itself
            f"--LabApp.app_settings_dir={self.settings_dir}",
            f"--LabApp.workspaces_dir={self.workspaces_dir}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--NotebookNotary.data_dir={self.data_dir}",
        ]
        if quiet:
            args += ["--ServerApp.log_level=WARN", "--LabApp.log_level=WARN"]
        if allow_root:
            args.append("--allow-root")
        return args

    def command(self, port: int = 8888, allow_root: bool | None = None, quiet: bool = True, python: str | None = None) -> list[str]:
        """The whole command line: ``python -m jupyter lab ...`` with this environment's Python."""
        return [python or sys.executable, "-m", "jupyter", *self.lab_args(port, allow_root, quiet)]


def _default_app_settings_dir() -> Path | None:
    try:
        from jupyterlab.commands import get_app_dir
    except ImportError:
        return None
    return Path(get_app_dir()) / "settings"


def _write_settings(settings_dir: Path) -> None:
    """Lab's app settings for the run: those of this environment (if any), plus the notification overrides."""
    default = _default_app_settings_dir()
    if default is not None and default.is_dir() and default.resolve() != settings_dir.resolve():
        shutil.copytree(default, settings_dir, dirs_exist_ok=True)  # page_config.json, overrides.d/ as installed
    settings_dir.mkdir(parents=True, exist_ok=True)
    path = settings_dir / "overrides.json"
    overrides = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for plugin, values in NOTIFICATION_OVERRIDES.items():
        overrides.setdefault(plugin, {}).update(values)
    path.write_text(json.dumps(overrides, indent=2) + "\n", encoding="utf-8")


def _trust(notebook: Path, data_dir: Path) -> None:
    """Sign the notebook in the run's own signature database (what ``jupyter trust`` does, kept in the folder)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    data_dir.mkdir(parents=True, exist_ok=True)
    notary = NotebookNotary(data_dir=str(data_dir))
    try:
        notary.sign(nbformat.read(str(notebook), as_version=4))
    finally:
        notary.store.close()


def prepare_lab_run(run_dir: str | Path) -> LabRun:
    """Make ``run_dir`` ready for ``jupyter lab``: a fresh, trusted tour notebook and the run's settings.

    Replaces a tour copy left by an earlier run (its saved widget views would point at
    models that no longer exist); touches nothing outside ``run_dir``. Raises
    MissingDependencyError without JupyterLab (the ``notebook`` extra).
    """
    from . import _deps

    _deps.require("jupyterlab", "the explorer tour in JupyterLab")  # nbformat comes with it
    root = Path(run_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    run = LabRun(root, root / TOUR_NAME)
    write_tour(run.notebook)
    _trust(run.notebook, run.data_dir)
    _write_settings(run.settings_dir)
    run.workspaces_dir.mkdir(parents=True, exist_ok=True)
    return run
