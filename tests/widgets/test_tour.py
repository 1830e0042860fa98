"""The tour notebook is generated fresh, and the demo's run folder never touches the tracked one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vecbook.widgets.lab import NOTIFICATION_OVERRIDES, prepare_lab_run
from vecbook.widgets.tour import TOUR_NAME, cell_sources, tour_notebook, write_tour

ROOT = Path(__file__).resolve().parents[2]
TRACKED = ROOT / "notebooks" / TOUR_NAME


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_tracked_tour_says_what_the_generated_one_says():
    """Outputs a user's Lab saved into the tracked copy do not matter here, only its cells."""
    tracked = json.loads(TRACKED.read_text(encoding="utf-8"))
    assert cell_sources(tracked) == cell_sources(tour_notebook()), (
        f"{TRACKED} differs from vecbook.widgets.tour: restore it (git checkout) or regenerate it with "
        "python -c 'from vecbook.widgets.tour import write_tour; write_tour(\"notebooks/explorer_tour.ipynb\")'")


def test_a_fresh_tour_has_no_outputs_or_widget_state(tmp_path):
    path = write_tour(tmp_path / "sub" / TOUR_NAME)
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "widgets" not in nb["metadata"] and nb["metadata"]["kernelspec"]["name"] == "python3"
    assert [p.name for p in path.parent.iterdir()] == [TOUR_NAME]  # no temp file left behind


def test_the_run_folder_holds_a_fresh_trusted_copy_and_leaves_the_tracked_one_alone(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbformat.sign import NotebookNotary

    before = digest(TRACKED)
    run_dir = tmp_path / "vecbook_demo"
    run = prepare_lab_run(run_dir)
    assert run.notebook == run_dir / TOUR_NAME and digest(TRACKED) == before
    # An earlier session saved outputs and widget views into the copy: the next run starts fresh.
    saved = json.loads(run.notebook.read_text(encoding="utf-8"))
    saved["cells"][2]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                     "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "gone", "version_major": 2}}}]
    saved["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    run.notebook.write_text(json.dumps(saved), encoding="utf-8")
    run = prepare_lab_run(run_dir)
    assert json.loads(run.notebook.read_text(encoding="utf-8")) == tour_notebook()
    assert digest(TRACKED) == before

    notary = NotebookNotary(data_dir=str(run.data_dir))  # the database Lab is pointed at
    try:
        assert notary.check_signature(nbformat.read(str(run.notebook), as_version=4))
    finally:
        notary.store.close()
    overrides = json.loads((run.settings_dir / "overrides.json").read_text(encoding="utf-8"))
    assert overrides["@jupyterlab/apputils-extension:notification"] == NOTIFICATION_OVERRIDES["@jupyterlab/apputils-extension:notification"]
    assert all(p == run_dir or run_dir in p.parents for p in run_dir.rglob("*"))


def test_lab_is_told_to_use_the_run_folder_and_open_the_notebook(tmp_path):
    run = prepare_lab_run(tmp_path)
    args = run.lab_args(port=8899, allow_root=False)
    assert args[0] == "lab" and "--port=8899" in args and "--ip=127.0.0.1" in args and "--allow-root" not in args
    assert f"--ServerApp.root_dir={run.root}" in args
    assert "--LabApp.default_url=/lab/tree/explorer_tour.ipynb" in args  # the printed URL opens the notebook
    assert f"--LabApp.app_settings_dir={run.settings_dir}" in args and f"--NotebookNotary.data_dir={run.data_dir}" in args
    assert all(str(tmp_path) in a for a in args if a.startswith("--") and "dir=" in a)
