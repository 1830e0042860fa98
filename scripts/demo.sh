#!/usr/bin/env bash
# The main job: the explorer on the embedded default. Builds the sample workspace (local
# backend + offline MiniLM model + the bundled PyPI sample) in vecbook_demo/, shows a plain
# and a filtered search in the terminal, then opens a fresh copy of the explorer tour
# (vecbook_demo/explorer_tour.ipynb; the tracked notebooks/explorer_tour.ipynb is never
# opened, so the work tree stays clean) in JupyterLab on http://127.0.0.1:8888: the URL it
# prints, with its token, opens the notebook. VECBOOK_NO_LAB=1 stops after the terminal
# search; extra arguments go to `python -m vecbook demo` (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VECBOOK_VENV:-$ROOT/.venv}"   # as scripts/_venv.sh has it
EXTRAS="local-model,notebook"
say() { echo "demo: $*"; }
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV (first run only) ..."
fi
source "$ROOT/scripts/_venv.sh"
# install_extras is silent for its minutes on a first run: say so before it starts (its stamp file
# tells whether it will install; the check here only chooses the message).
first_install=0
if [ ! -f "$VENV/.vecbook-$EXTRAS-$(cksum < "$ROOT/pyproject.toml" | cut -d' ' -f1)" ]; then
  first_install=1
  say "installing vecbook[$EXTRAS] and the offline model's weights into $VENV (1-2 minutes on a first run; later runs skip this) ..."
fi
started=$SECONDS
install_extras "$EXTRAS"
if [ "$first_install" = "1" ]; then say "installed in $((SECONDS - started)) s"; fi
cd "$ROOT"
export VECBOOK_TOUR_STORE="$ROOT/vecbook_demo"   # the tour reopens the store built here
"$VENV/bin/python" -m vecbook demo --store-dir "$VECBOOK_TOUR_STORE" "$@"
if [ "${VECBOOK_NO_LAB:-}" = "1" ]; then exit 0; fi
echo
exec "$VENV/bin/python" -m vecbook tour --run-dir "$VECBOOK_TOUR_STORE"
