"""``python -m vecbook``: the terminal half of the README's main job, the tour's run folder, and
``scripts/demo.sh`` saying what it does and never opening the tracked notebook."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from vecbook.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
TRACKED_TOUR = ROOT / "notebooks" / "explorer_tour.ipynb"


def test_demo_builds_the_sample_and_searches(tmp_path, capsys):
    assert main(["demo", "--hash-model", "--store-dir", str(tmp_path), "--query", "http client", "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.index("embedding 3,000 package summaries") < out.index("3000 packages ready")  # said before the slow step
    assert out.count("3 results") == 2  # plain and filtered
    # a second run reopens the store instead of embedding again
    assert main(["demo", "--hash-model", "--store-dir", str(tmp_path), "--filter", '{"month": {"exists": false}}']) == 0
    out = capsys.readouterr().out
    assert "3000 packages ready" in out and "embedding" not in out


def test_tour_prepares_a_fresh_copy_and_leaves_the_tracked_notebook_alone(tmp_path, capsys):
    before = hashlib.sha256(TRACKED_TOUR.read_bytes()).hexdigest()
    run_dir = tmp_path / "vecbook_demo"
    assert main(["tour", "--run-dir", str(run_dir), "--no-lab", "--port", "8899"]) == 0
    out = capsys.readouterr().out
    assert f"a fresh copy at {run_dir / 'explorer_tour.ipynb'}" in out and (run_dir / "explorer_tour.ipynb").is_file()
    command = out.strip().splitlines()[-1]
    assert " -m jupyter lab " in command and "--port=8899" in command
    assert f"--ServerApp.root_dir={run_dir}" in command and "--LabApp.default_url=/lab/tree/explorer_tour.ipynb" in command
    assert "notebooks" not in command
    assert hashlib.sha256(TRACKED_TOUR.read_bytes()).hexdigest() == before


STUB = """#!/bin/sh
# Stands in for python3 and the venv's python: says how it was called, makes the venv it is asked for.
echo "[python $*]"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
"""


def test_demo_script_says_what_it_does_and_opens_the_tour_from_its_run_folder(tmp_path):
    """demo.sh with stand-ins for Python (no 2-minute install here): the first run announces each slow
    step before it starts, and Lab is started on the store's folder, not on notebooks/."""
    stub = tmp_path / "python3"
    stub.write_text(STUB)
    stub.chmod(0o755)
    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": str(stub), "VECBOOK_VENV": str(venv)}

    def demo() -> list[str]:
        result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    first = demo()
    creating = next(i for i, line in enumerate(first) if line.startswith("vecbook: creating"))
    installing = next(i for i, line in enumerate(first) if line.startswith("vecbook: installing vecbook[local-model,notebook]"))
    assert creating < first.index(f"[python -m venv {venv}]") < installing
    assert installing < next(i for i, line in enumerate(first) if line.startswith("[python -m pip install --quiet -e"))
    store = ROOT / "vecbook_demo"
    assert first[-1] == f"[python -m vecbook tour --run-dir {store}]"
    assert f"[python -m vecbook demo --store-dir {store}]" in first
    assert not any("notebooks/" in line for line in first)

    again = demo()  # installed: no install messages, straight to the demo
    assert not any(line.startswith("vecbook: ") for line in again)
    assert again == [f"[python -m vecbook demo --store-dir {store}]", "", f"[python -m vecbook tour --run-dir {store}]"]
