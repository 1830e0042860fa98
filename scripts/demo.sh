#!/usr/bin/env bash
# The main job: the explorer on the embedded default. Builds the sample workspace (local
# backend + offline MiniLM model + the bundled PyPI sample) in vecbook_demo/, shows a plain
# and a filtered search in the terminal, then opens a fresh copy of the explorer tour
# (vecbook_demo/explorer_tour.ipynb; the tracked notebooks/explorer_tour.ipynb is never
# opened, so the work tree stays clean) in JupyterLab on http://127.0.0.1:8888: the URL it
# prints, with its token, opens the notebook. VECBOOK_NO_LAB=1 stops after the terminal
# search; extra arguments go to `python -m vecbook demo` (see --help).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"   # says what it does while it creates and installs
install_extras "local-model,notebook"
cd "$ROOT"
export VECBOOK_TOUR_STORE="$ROOT/vecbook_demo"   # the tour reopens the store built here
"$VENV/bin/python" -m vecbook demo --store-dir "$VECBOOK_TOUR_STORE" "$@"
if [ "${VECBOOK_NO_LAB:-}" = "1" ]; then exit 0; fi
echo
exec "$VENV/bin/python" -m vecbook tour --run-dir "$VECBOOK_TOUR_STORE"
