#!/usr/bin/env bash
# The main job: the explorer on the embedded default. Builds the sample workspace (local
# backend + offline MiniLM model + the bundled PyPI sample), shows a plain and a filtered
# search in the terminal, then opens notebooks/explorer_tour.ipynb in JupyterLab on
# http://127.0.0.1:8888 (the URL with its token is printed). VECBOOK_NO_LAB=1 stops after
# the terminal search; extra arguments go to `python -m vecbook demo` (see --help).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_extras "local-model,notebook"
cd "$ROOT"
export VECBOOK_TOUR_STORE="$ROOT/vecbook_demo"   # the notebook reopens the store built here
"$VENV/bin/python" -m vecbook demo --store-dir "$VECBOOK_TOUR_STORE" "$@"
if [ "${VECBOOK_NO_LAB:-}" = "1" ]; then exit 0; fi
root_flag=""
if [ "$(id -u)" = "0" ]; then root_flag="--allow-root"; fi
exec "$VENV/bin/jupyter" lab notebooks/explorer_tour.ipynb --ip=127.0.0.1 --no-browser $root_flag
