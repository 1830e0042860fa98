"""Run the docs and the demo notebooks as tests, with nbval.

- ``docs/**/*.md`` with a jupytext MyST header are read with jupytext and run as notebooks;
- ``notebooks/*.ipynb`` are run as they are.

Both in lax mode: outputs are not compared, the checks are ``assert``s in the cells.
Cells run in a kernel of the current environment, with the file's folder as cwd.
"""

from __future__ import annotations

import pytest

try:
    import jupytext
    from nbval.plugin import IPyNbFile
except ImportError:  # the dev extra is not installed: docs are not collected
    IPyNbFile = None


if IPyNbFile is not None:

    class LaxNotebook(IPyNbFile):
        """A notebook run cell by cell, outputs not compared."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.compare_outputs = False

    class MystNotebook(LaxNotebook):
        """A MyST markdown page run as a notebook."""

        def collect(self):
            import nbval.plugin as plugin

            # nbval reads with nbformat.read(path); read the markdown with jupytext instead.
            real_read = plugin.nbformat.read
            plugin.nbformat.read = lambda path, as_version=4: jupytext.read(path)
            try:
                yield from IPyNbFile.collect(self)
            finally:
                plugin.nbformat.read = real_read


def _is_myst_notebook(path) -> bool:
    with open(path, encoding="utf-8") as f:
        head = f.read(400)
    return head.startswith("---") and "jupytext" in head and "format_name: myst" in head


def pytest_collect_file(file_path, parent):
    if IPyNbFile is None or parent.config.option.nbval or parent.config.option.nbval_lax:
        return None  # with nbval's own flags, nbval collects the .ipynb files itself
    parent.config.option.nbval_current_env = True
    if file_path.suffix == ".md" and _is_myst_notebook(file_path):
        return MystNotebook.from_parent(parent, path=file_path)
    if file_path.suffix == ".ipynb" and file_path.parent.name == "notebooks" and ".ipynb_checkpoints" not in file_path.parts:
        return LaxNotebook.from_parent(parent, path=file_path)
    return None
