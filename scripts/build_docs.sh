#!/usr/bin/env bash
# The user guide as a static HTML site in docs/_build/html (Sphinx + myst-nb, docs/conf.py).
# Every page runs as a notebook while it is built; the build stops at the first cell that fails.
# The widget renderer (require.js, @jupyter-widgets/html-manager, anywidget) is fetched once with
# npm into docs/.widgets-js/ and served from the site's _static/: the pages load nothing from a CDN.
# Extra args go to sphinx-build (e.g. -q). Read the result with: python -m http.server -d docs/_build/html
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_extras "all,dev,docs"   # the pages import every backend and run in an ipykernel (dev)
cd "$ROOT"
"$VENV/bin/python" -m sphinx -E -b html docs docs/_build/html -d docs/_build/doctrees "$@"
echo "docs: $ROOT/docs/_build/html/index.html"
