"""Collect the MyST markdown pages of the docs as notebooks and run them with nbval.

nbval only collects ``.ipynb`` files; this reads each ``docs/**/*.md`` that has a
jupytext header with jupytext and hands the notebook to nbval's collector, in
lax mode (outputs are not compared: the checks are ``assert``s in the cells).
Cells run in a kernel of the current environment, with the page's folder as cwd.
"""

from __future__ import annotations

import pytest

try:
    import jupytext
    from nbval.plugin import IPyNbFile
except ImportError:  # the dev extra is not installed: docs are not collected
    IPyNbFile = None


if IPyNbFile is not None:

    class MystNotebook(IPyNbFile):
        """A MyST markdown page run as a notebook."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.compare_outputs = False

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
    if IPyNbFile is None or file_path.suffix != ".md" or not _is_myst_notebook(file_path):
        return None
    parent.config.option.nbval_current_env = True
    return MystNotebook.from_parent(parent, path=file_path)
