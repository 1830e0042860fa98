"""Sphinx configuration: the user guide as a static HTML site (``bash scripts/build_docs.sh``).

The pages are MyST markdown notebooks (jupytext); myst-nb reads them natively, executes
them with nbclient (which stores the widget state) and fails the build on the first error.

Widgets are rendered by ``@jupyter-widgets/html-manager`` served from ``_static`` with
require.js and anywidget's AMD bundle (plotly's FigureWidget is an anywidget): nothing is
loaded from a CDN when a page is viewed. The three npm packages are fetched with
``npm pack`` at build time, pinned to a version and an integrity hash, into a cache folder
(``docs/.widgets-js/``, or ``$VECBOOK_DOCS_JS_CACHE``); once there, building is offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

project = "vecbook"
author = "vecbook contributors"
copyright = "vecbook contributors"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "_templates", ".widgets-js", "**.ipynb_checkpoints", "README.md", "**/README.md",
                    "Thumbs.db", ".DS_Store"]

# ---- execution: every page runs, as in the test suite (root conftest.py), and an error fails the build
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600
nb_execution_in_temp = False  # cwd = the page's folder, as when the pages run as tests
nb_merge_streams = True

# ---- theme: sphinx-book-theme ships its fonts and scripts, nothing is fetched when a page is viewed
html_theme = "sphinx_book_theme"
html_title = "vecbook"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
html_static_path = ["_static"]
html_css_files = ["vecbook-docs.css"]
html_last_updated_fmt = None
# No copies of the sources in the output: docs/_build/html/_sources/*.md would be collected again by
# pytest (testpaths has docs/, and the root conftest.py runs every MyST notebook it finds).
html_copy_source = False

# ---- widgets, rendered offline -------------------------------------------------------------------------

# npm package -> (version, integrity from the registry): what is served under _static/vecbook-widgets/.
# html-manager 1.0.x is the one for ipywidgets 8; anywidget's npm bundle (an AMD module, the same file as
# the Python package's nbextension/index.js) must match the Python package's version: see _anywidget_pin().
WIDGET_PACKAGES = {
    "requirejs": ("2.3.8", "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw=="),
    "@jupyter-widgets/html-manager": ("1.0.15", "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="),
}
ANYWIDGET_INTEGRITY = {
    "0.11.0": "sha512-LHZgW2j5UjyerZSZcO+BtZPXGMSORQV2bUT480hOR5x/BXS8sOradi/71amJfMueSEnKX0dqPwTfsOGHTsyZpQ==",
}
JS_CACHE = Path(os.environ.get("VECBOOK_DOCS_JS_CACHE") or HERE / ".widgets-js")
STATIC_JS = "vecbook-widgets"  # folder under _static in the output


def _anywidget_pin() -> tuple[str, str | None]:
    from importlib.metadata import version

    v = version("anywidget")
    return v, ANYWIDGET_INTEGRITY.get(v)


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _npm_pack(name: str, version: str, integrity: str | None) -> Path:
    """``npm pack name@version`` into the cache (once), checked and unpacked; returns the package folder."""
    safe = name.replace("@", "").replace("/", "-")
    folder = JS_CACHE / f"{safe}-{version}"
    if (folder / "package" / "package.json").exists():
        return folder / "package"
    JS_CACHE.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"building the docs needs npm once, to fetch {name}@{version} into {JS_CACHE} "
                           "(the widget renderer served with the pages); install Node.js/npm or fill that cache")
    out = subprocess.run([npm, "pack", f"{name}@{version}", "--json", "--pack-destination", str(JS_CACHE)],
                         capture_output=True, text=True, cwd=JS_CACHE)
    if out.returncode != 0:
        raise RuntimeError(f"npm pack {name}@{version} failed:\n{out.stderr[-2000:]}")
    tarball = JS_CACHE / json.loads(out.stdout)[0]["filename"].replace("/", "-").lstrip("@")
    if not tarball.exists():  # npm's naming of scoped tarballs
        tarball = next(JS_CACHE.glob(f"{safe}-{version}.tgz"))
    got = _integrity(tarball)
    if integrity is not None and got != integrity:
        tarball.unlink()
        raise RuntimeError(f"{name}@{version}: integrity {got} differs from the pinned {integrity}")
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _extract(tarball, tmp)
    tarball.unlink()
    try:
        tmp.rename(folder)
    except OSError:  # another build unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / "package"


def _extract(tarball: Path, into: Path) -> None:
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)


def _widget_static() -> Path:
    """The folder added to html_static_path: _static/vecbook-widgets/{require.js,html-manager/,anywidget/,cdn/}.

    Made once per set of versions (published by an atomic rename), so concurrent builds can share it.
    """
    pins = {"requirejs": WIDGET_PACKAGES["requirejs"],
            "@jupyter-widgets/html-manager": WIDGET_PACKAGES["@jupyter-widgets/html-manager"],
            "anywidget": _anywidget_pin()}
    key = hashlib.sha256(json.dumps(pins, sort_keys=True).encode()).hexdigest()[:12]
    root = JS_CACHE / f"static-{key}"
    if (root / STATIC_JS / "anywidget" / "index.js").exists():
        return root
    requirejs, manager, anywidget = (_npm_pack(name, *pin) for name, pin in pins.items())
    tmp = JS_CACHE / f"static-{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    target = tmp / STATIC_JS
    (target / "anywidget").mkdir(parents=True)
    shutil.copy(requirejs / "require.js", target / "require.js")
    shutil.copytree(manager / "dist", target / "html-manager", ignore=shutil.ignore_patterns("*.map", "embed.js*"))
    shutil.copy(anywidget / "dist" / "index.js", target / "anywidget" / "index.js")
    (target / "cdn").mkdir()
    (target / "cdn" / "README.txt").write_text("html-manager's loader looks here for widget modules it does not know "
                                               "(data-jupyter-widgets-cdn); these docs need none.\n")
    try:
        tmp.rename(root)
    except OSError:  # another build published it first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


html_static_path.append(str(_widget_static()))

# Order matters: require.js, then the loader configuration, then html-manager (which reads it on load).
# Relative paths: Sphinx writes them relative to each page. No data-jupyter-widgets-cdn here: the
# configuration script sets it to the local folder above (an absolute URL computed from its own).
nb_ipywidgets_js = {
    f"{STATIC_JS}/require.js": {},
    "vecbook-widgets-config.js": {},
    f"{STATIC_JS}/html-manager/embed-amd.js": {},
}


# ---- widget state clean-up -------------------------------------------------------------------------------

def _resolves(state, path) -> bool:
    node = state
    for key in path[:-1]:
        if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return False
    return isinstance(node, (dict, list))


def prune_stale_widget_buffers(widget_state: dict) -> int:
    """Drop binary buffers whose path no longer exists in their model's state; returns how many.

    nbclient keeps every buffer a model ever sent, keyed by path (jupyter/nbclient#169), also
    when a later update set that attribute to None: plotly's FigureWidget sends its edits as
    ``_py2js_update`` = {..., numpy arrays} and then resets it to None, so the saved state has
    buffers for ``_py2js_update.style_data.x`` while ``_py2js_update`` is null, and
    html-manager fails on the whole page (TypeError: Cannot read properties of null).
    """
    dropped = 0
    for model in widget_state.get("state", {}).values():
        buffers = model.get("buffers")
        if not buffers:
            continue
        kept = [b for b in buffers if _resolves(model.get("state", {}), b["path"])]
        dropped += len(buffers) - len(kept)
        if kept:
            model["buffers"] = kept
        else:
            model.pop("buffers")
    return dropped


def _clean_widget_state(app, pagename, templatename, context, doctree):
    """Runs before myst-nb adds the page's scripts (priority 500) and rewrites the saved widget state."""
    from myst_nb.core.render import sanitize_script_content
    from myst_nb.sphinx_ import NbMetadataCollector

    if app.builder.format != "html":
        return
    entry = NbMetadataCollector.get_js_files(app.env, pagename).get("ipywidgets_state")
    if entry is None:
        return
    uri, kwargs = entry
    state = json.loads(kwargs["body"])  # the body escapes "</script>" as "<\/script>", which JSON reads back
    if prune_stale_widget_buffers(state):
        kwargs["body"] = sanitize_script_content(json.dumps(state))


def setup(app):
    app.connect("html-page-context", _clean_widget_state, priority=400)
